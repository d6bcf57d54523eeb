"""GPU benchmark of the "cuda" IdMap backend: bulk lookup and insert, against torch baselines.

Run where torch has CUDA and lfe._C was built with it (bench/gpu_check.sh does both):

    python bench/gpu_bench_id_map.py [--sizes 1000000,10000000] [--repeats 10]

Axes: table size N (random distinct int64 IDs over the whole range); lookups of N IDs drawn
uniformly from the table (hit rate 100%) and of N IDs not in it (hit rate 0%); an insert of N
new IDs into an empty map that has room for N (the whole call, with its two host
synchronisations). The table is reserved for N IDs, so its load factor is N / slots <= 0.5
(0.30 at 10M: 2**25 slots); the table printed above the results says which.

Baselines in the same run: `torch.searchsorted` on the sorted IDs for lookups (the search
alone, so a lower bound on the pure-PyTorch backend), and the pure-PyTorch backend's insert
(sort and merge) for inserts. Timings use CUDA events around the backend call; the IdMap
frontend adds one validation pass over the IDs on top.

Prints keys/s, the speedup over the baseline and the ratio to the H200 targets (lookup
1e10 keys/s, insert 3e9 keys/s) as one Markdown table.
"""

from __future__ import annotations

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from gpu_common import cuda_time_seconds, markdown_table  # noqa: E402

from lfe import RESERVED_ID  # noqa: E402
from lfe.id_map.cuda_backend import CudaIdMapBackend, is_built  # noqa: E402
from lfe.id_map.torch_backend import TorchIdMapBackend  # noqa: E402

MAX_ID = 2**63 - 1
LOOKUP_TARGET_KEYS_PER_SECOND = 10e9
INSERT_TARGET_KEYS_PER_SECOND = 3e9


def distinct_random_ids(count: int, device: torch.device, generator: torch.Generator):
    """`count` distinct IDs, uniform over the valid int64 range, in random order."""
    drawn = torch.randint(
        RESERVED_ID + 1, MAX_ID, (count + count // 8 + 16,), device=device, generator=generator
    )
    distinct = torch.unique(drawn)
    if distinct.numel() < count:
        raise RuntimeError(f"drew only {distinct.numel()} distinct IDs of {count} wanted")
    order = torch.randperm(distinct.numel(), device=device, generator=generator)[:count]
    return distinct[order]


def time_insert(make_backend, ids: torch.Tensor, repeats: int) -> float:
    """Median seconds of `make_backend().insert(ids)`, the backend built outside the timing."""
    times = []
    for _ in range(repeats + 1):
        backend = make_backend()
        torch.cuda.synchronize()
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        backend.insert(ids)
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
        del backend
    return sorted(times[1:])[repeats // 2]  # the first run warms the allocator up


def benchmark_size(num_ids: int, repeats: int, device: torch.device) -> tuple[list, str]:
    generator = torch.Generator(device=device).manual_seed(num_ids)
    both = distinct_random_ids(2 * num_ids, device, generator)
    table_ids, absent_ids = both[:num_ids], both[num_ids:]
    hits = table_ids[torch.randint(0, num_ids, (num_ids,), device=device, generator=generator)]

    table = CudaIdMapBackend(device, capacity=num_ids)
    table.insert(table_ids)
    expected_rows = torch.arange(num_ids, device=device)
    if not torch.equal(table.lookup(table_ids), expected_rows):
        raise RuntimeError(f"the cuda backend returned wrong rows at N={num_ids}")
    if not bool((table.lookup(absent_ids) == -1).all()):
        raise RuntimeError(f"the cuda backend found absent IDs at N={num_ids}")
    load_factor = num_ids / table.capacity()
    load = f"N={num_ids:,}: {table.capacity():,} slots, load factor {load_factor:.2f}"

    sorted_ids, _ = torch.sort(table_ids)
    lookup_hits = cuda_time_seconds(lambda: table.lookup(hits), repeats=repeats)
    lookup_misses = cuda_time_seconds(lambda: table.lookup(absent_ids), repeats=repeats)
    search_hits = cuda_time_seconds(lambda: torch.searchsorted(sorted_ids, hits), repeats=repeats)
    search_misses = cuda_time_seconds(
        lambda: torch.searchsorted(sorted_ids, absent_ids), repeats=repeats
    )
    insert = time_insert(lambda: CudaIdMapBackend(device, capacity=num_ids), table_ids, repeats)
    baseline_insert = time_insert(
        lambda: TorchIdMapBackend(device, capacity=num_ids), table_ids, max(repeats // 3, 1)
    )

    measured = [
        ("lookup, hit rate 100%", lookup_hits, "searchsorted", search_hits, "lookup"),
        ("lookup, hit rate 0%", lookup_misses, "searchsorted", search_misses, "lookup"),
        ("insert N new IDs", insert, "torch backend", baseline_insert, "insert"),
    ]
    rows = []
    for operation, seconds, baseline, baseline_seconds, kind in measured:
        if kind == "lookup":
            target = LOOKUP_TARGET_KEYS_PER_SECOND
        else:
            target = INSERT_TARGET_KEYS_PER_SECOND
        rate = num_ids / seconds
        rows.append(
            [
                operation,
                f"{num_ids:,}",
                f"{rate / 1e9:.2f}",
                baseline,
                f"{num_ids / baseline_seconds / 1e9:.3f}",
                f"{baseline_seconds / seconds:.1f}x",
                f"{target / 1e9:.0f}",
                f"{rate / target:.2f}",
            ]
        )
    return rows, load


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000000,10000000", help="comma-separated table sizes")
    parser.add_argument("--repeats", type=int, default=10, help="timed runs per measurement")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("gpu_bench_id_map: no CUDA device is visible; nothing to measure")
        return 0
    if not is_built():
        print("gpu_bench_id_map: lfe._C was built without CUDA (LFE_FORCE_CUDA=1 to build it)")
        return 1

    device = torch.device("cuda", torch.cuda.current_device())
    all_rows, loads = [], []
    for num_ids in (int(size) for size in args.sizes.split(",")):
        rows, load = benchmark_size(num_ids, args.repeats, device)
        all_rows += rows
        loads.append(load)

    device_name = torch.cuda.get_device_name(device)
    print(f"### lfe cuda IdMap on {device_name} (torch {torch.__version__})")
    print()
    print("; ".join(loads))
    print()
    header = [
        "operation",
        "N",
        "lfe cuda (1e9 keys/s)",
        "baseline",
        "baseline (1e9 keys/s)",
        "speedup",
        "H200 target (1e9 keys/s)",
        "ratio to target",
    ]
    print(markdown_table(header, all_rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
