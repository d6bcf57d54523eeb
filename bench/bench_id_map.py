"""CPU benchmarks of `lfe.IdMap`: bulk lookup and build, against baselines in the same run.

Run (the project's pytest config disables benchmarks by default, so enable them):

    .venv/bin/python -m pytest bench/bench_id_map.py --benchmark-enable

Axes: table size (number of random int64 IDs: 100K, 1M, 10M; `LFE_BENCH_SIZES=100000,1000000`
picks a subset) and 10M lookups drawn uniformly from the table's IDs (hit rate 100%).

Lookup baselines: the "torch" backend, `pandas.Index.get_indexer`, a Python dict (1M lookups,
per-key rate) and a floor probe: a random gather of int64 values from an array as large as
the lfe table, one cache miss per access, with numpy fancy indexing (one thread) and with
`torch.take` (all threads); the floor is the faster of the two. Build: 1M new IDs inserted
into an empty map, against building a `pandas.Index` and its hash table, and a dict.

The last test prints keys/s and the ratios as a Markdown table (bench/README.md holds one).
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
import torch

from lfe import RESERVED_ID, IdMap
from lfe.id_map.id_map import compiled_backend_class

TABLE_SIZES = [
    int(size) for size in os.environ.get("LFE_BENCH_SIZES", "100000,1000000,10000000").split(",")
]
NUM_LOOKUPS = 10_000_000
NUM_DICT_LOOKUPS = 1_000_000
NUM_BUILD_IDS = 1_000_000
ROUNDS = 3

HAS_CPU_BACKEND = compiled_backend_class("cpu") is not None
LOOKUP_METHODS = ["lfe-cpu", "lfe-torch", "pandas", "dict", "floor-numpy", "floor-torch"]
BUILD_METHODS = ["lfe-cpu", "lfe-cpu-reserved", "lfe-torch", "pandas", "dict"]

# (benchmark, method, number of IDs in the table) -> keys per second, for the summary.
keys_per_second: dict[tuple[str, str, int], float] = {}
# Number of IDs in the table -> mean slots examined per lookup in the lfe "cpu" table.
mean_probe_lengths: dict[int, float] = {}


def random_ids(count: int, seed: int) -> np.ndarray:
    """`count` distinct int64 IDs spread over the whole range: a counter through a bijection."""
    counter = np.arange(count + 1, dtype=np.uint64) + np.uint64(seed) * np.uint64(2**40)
    mixed = counter * np.uint64(0x9E3779B97F4A7C15)
    mixed ^= mixed >> np.uint64(29)
    ids = mixed.view(np.int64)
    return ids[ids != RESERVED_ID][:count].copy()


class LookupWorkload:
    """IDs of one table size, the lookups drawn from them and every structure built on them.

    Only one size is held at a time: the 10M structures together take a few GB.
    """

    current: LookupWorkload | None = None

    def __init__(self, num_ids: int) -> None:
        generator = np.random.default_rng(num_ids)
        self.num_ids = num_ids
        self.ids = random_ids(num_ids, seed=1)
        self.lookups = self.ids[generator.integers(0, num_ids, NUM_LOOKUPS)]
        self.lookups_tensor = torch.from_numpy(self.lookups)
        self.built: dict[str, object] = {}

    @classmethod
    def for_size(cls, num_ids: int) -> LookupWorkload:
        if cls.current is None or cls.current.num_ids != num_ids:
            cls.current = None  # free the previous size before allocating the next
            cls.current = cls(num_ids)
        return cls.current

    def structure(self, method: str) -> object:
        if method not in self.built:
            self.built[method] = self._build(method)
        return self.built[method]

    def _build(self, method: str) -> object:
        if method in ("lfe-cpu", "lfe-torch"):
            id_map = IdMap(backend=method.removeprefix("lfe-"))
            id_map.insert(torch.from_numpy(self.ids))
            return id_map
        if method == "pandas":
            index = pd.Index(self.ids)
            index.get_indexer(self.ids[:1])  # builds the hash table
            return index
        if method == "dict":
            return (
                dict(zip(self.ids.tolist(), range(self.num_ids), strict=True)),
                self.lookups[:NUM_DICT_LOOKUPS].tolist(),
            )
        # Floor probe: as many bytes as the lfe table's slots (16 per slot), read at random.
        slot_count = self._lfe_slot_count()
        values = np.arange(2 * slot_count, dtype=np.int64)  # numpy asks for huge pages here
        positions = np.random.default_rng(0).integers(0, values.size, NUM_LOOKUPS)
        return values, positions

    def _lfe_slot_count(self) -> int:
        if HAS_CPU_BACKEND:
            return self.structure("lfe-cpu")._impl.capacity()
        return 1 << int(np.ceil(np.log2(2 * self.num_ids)))

    def lookup_function(self, method: str):
        built = self.structure(method)
        if method.startswith("lfe-"):
            return lambda: built.lookup(self.lookups_tensor)
        if method == "pandas":
            return lambda: built.get_indexer(self.lookups)
        if method == "dict":
            table, keys = built
            return lambda: [table.get(key, -1) for key in keys]
        values, positions = built
        if method == "floor-numpy":
            return lambda: values[positions]
        values_tensor, positions_tensor = torch.from_numpy(values), torch.from_numpy(positions)
        return lambda: torch.take(values_tensor, positions_tensor)


def record(benchmark, kind: str, method: str, num_ids: int, num_keys: int) -> None:
    """Store keys/s of the benchmark just run (nothing when benchmarks are disabled)."""
    stats = getattr(benchmark, "stats", None)
    if stats is None:
        return
    rate = num_keys / stats.stats.median
    keys_per_second[(kind, method, num_ids)] = rate
    benchmark.extra_info["keys_per_second"] = rate


@pytest.mark.parametrize(
    "num_ids, method",
    [(num_ids, method) for num_ids in TABLE_SIZES for method in LOOKUP_METHODS],
    ids=lambda value: str(value),
)
def test_lookup(benchmark, num_ids, method):
    if method == "lfe-cpu" and not HAS_CPU_BACKEND:
        pytest.skip("the C++ extension lfe._C is not built")
    workload = LookupWorkload.for_size(num_ids)
    lookup = workload.lookup_function(method)
    num_keys = NUM_DICT_LOOKUPS if method == "dict" else NUM_LOOKUPS
    benchmark.group = f"lookup, table of {num_ids} IDs"
    benchmark.extra_info.update(num_ids=num_ids, num_lookups=num_keys, hit_rate=1.0)

    result = benchmark.pedantic(lookup, rounds=ROUNDS, iterations=1, warmup_rounds=1)

    record(benchmark, "lookup", method, num_ids, num_keys)
    if method.startswith("lfe-"):
        # Rows follow insertion order, so the row of a looked-up ID points back at it.
        rows = result[:1000].numpy()
        assert np.array_equal(workload.ids[rows], workload.lookups[:1000])
    if method == "lfe-cpu":
        table = workload.structure("lfe-cpu")._impl
        mean_probe_lengths[num_ids] = table.mean_probe_length(workload.lookups_tensor[:1_000_000])


@pytest.mark.parametrize("method", BUILD_METHODS)
def test_build(benchmark, method):
    if method.startswith("lfe-cpu") and not HAS_CPU_BACKEND:
        pytest.skip("the C++ extension lfe._C is not built")
    ids = random_ids(NUM_BUILD_IDS, seed=2)
    ids_tensor = torch.from_numpy(ids)
    builders = {
        "lfe-cpu": lambda: IdMap(backend="cpu").insert(ids_tensor),
        "lfe-cpu-reserved": lambda: IdMap(backend="cpu", capacity=ids.size).insert(ids_tensor),
        "lfe-torch": lambda: IdMap(backend="torch").insert(ids_tensor),
        "pandas": lambda: pd.Index(ids).get_indexer(ids[:1]),
        "dict": lambda: dict(zip(ids.tolist(), range(ids.size), strict=True)),
    }
    benchmark.group = f"build, {NUM_BUILD_IDS} new IDs"
    benchmark.extra_info.update(num_ids=NUM_BUILD_IDS)

    benchmark.pedantic(builders[method], rounds=ROUNDS, iterations=1, warmup_rounds=1)

    record(benchmark, "build", method, NUM_BUILD_IDS, NUM_BUILD_IDS)


def markdown_table(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def millions(rate: float | None) -> str:
    return "-" if rate is None else f"{rate / 1e6:.1f}"


def ratio(numerator: float | None, denominator: float | None) -> str:
    return "-" if numerator is None or denominator is None else f"{numerator / denominator:.2f}x"


def test_zz_summary(capsys):
    """Print the measured rates and the target ratios as Markdown (runs last in this file)."""
    if not keys_per_second:
        pytest.skip("benchmarks disabled: run with --benchmark-enable")

    def rate(kind, method, num_ids):
        return keys_per_second.get((kind, method, num_ids))

    lookup_rows = []
    for num_ids in TABLE_SIZES:
        floor_rates = [rate("lookup", name, num_ids) for name in ("floor-numpy", "floor-torch")]
        floor = max((value for value in floor_rates if value is not None), default=None)
        cpu = rate("lookup", "lfe-cpu", num_ids)
        lookup_rows.append(
            [f"{num_ids:,}"]
            + [millions(rate("lookup", method, num_ids)) for method in LOOKUP_METHODS]
            + [ratio(cpu, rate("lookup", "pandas", num_ids)), ratio(cpu, floor)]
            + [f"{mean_probe_lengths[num_ids]:.2f}" if num_ids in mean_probe_lengths else "-"]
        )
    build_pandas = rate("build", "pandas", NUM_BUILD_IDS)
    build_rows = [
        [method, millions(rate("build", method, NUM_BUILD_IDS))]
        + [ratio(rate("build", method, NUM_BUILD_IDS), build_pandas)]
        for method in BUILD_METHODS
    ]

    header = ["IDs in table"] + [f"{method} Mkeys/s" for method in LOOKUP_METHODS]
    header += ["lfe-cpu / pandas", "lfe-cpu / floor", "lfe-cpu probes/lookup"]
    with capsys.disabled():
        print(
            f"\n\nLookup of {NUM_LOOKUPS:,} IDs drawn from the table (dict: "
            f"{NUM_DICT_LOOKUPS:,}), torch threads = {torch.get_num_threads()}\n"
        )
        print(markdown_table(header, lookup_rows))
        print(f"\nBuild: {NUM_BUILD_IDS:,} new IDs into an empty structure\n")
        print(markdown_table(["method", "Mkeys/s", "vs pandas"], build_rows))
