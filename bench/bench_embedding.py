"""CPU benchmarks of the embedding data path, each against a plain-PyTorch baseline.

    pytest bench/bench_embedding.py --benchmark-enable -s

Axes: table rows x dim, IDs per batch, appends per stream. Ratios (baseline time / lfe time,
so higher is better for lfe) are printed at the end:

- forward + backward of `lfe.DynamicEmbedding` (ID lookup + gather + scatter-add) against
  `nn.Embedding` given precomputed row indices; target: lfe takes at most 1.5x as long.
- a stream of 100 appends of 10K rows to a 1M x 128 table (`extend` in training) against
  rebuilding an `nn.Embedding` with `torch.cat` per batch; target: at least 10x faster.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import lfe

TABLE_ROWS, DIM, BATCH_IDS = 100_000, 128, 16_384
STREAM_START_ROWS, APPENDS, ROWS_PER_APPEND = 1_000_000, 100, 10_000
NEW_ROW_STD = 0.1

SECONDS: dict[str, float] = {}


@pytest.fixture(scope="module", autouse=True)
def print_ratios(request):
    yield
    capture = request.config.pluginmanager.getplugin("capturemanager")
    pairs = [
        ("forward+backward", "nn.Embedding", "DynamicEmbedding", "at most 1.5x"),
        ("append stream (zeros)", "torch.cat rebuild", "DynamicEmbedding.extend", ">= 10x"),
        ("append stream (random)", "torch.cat rebuild", "DynamicEmbedding.extend", ">= 10x"),
    ]
    for group, baseline, ours, target in pairs:
        key_base, key_ours = f"{group}/{baseline}", f"{group}/{ours}"
        if key_base in SECONDS and key_ours in SECONDS:
            base, mine = SECONDS[key_base], SECONDS[key_ours]
            with capture.global_and_fixture_disabled():
                print(
                    f"\nlfe bench | {group}: {baseline} {base * 1e3:.1f} ms,"
                    f" {ours} {mine * 1e3:.1f} ms,"
                    f" {ours} takes {mine / base:.2f}x the baseline's time"
                    f" (baseline/lfe = {base / mine:.1f}x; target {target})"
                )


def record(benchmark, key: str) -> None:
    if benchmark.stats is not None:  # None under --benchmark-disable
        SECONDS[key] = benchmark.stats.stats.median


# Forward + backward -------------------------------------------------------------------------


def batch_ids() -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return torch.randint(0, TABLE_ROWS, (BATCH_IDS,), generator=generator) * 7 + 11


@pytest.mark.benchmark(group="forward+backward")
def test_forward_backward_nn_embedding(benchmark):
    table = nn.Embedding(TABLE_ROWS, DIM)
    rows = (batch_ids() - 11) // 7  # the indices a precomputed ID map would give

    def step():
        table.weight.grad = None
        table(rows).sum().backward()

    benchmark(step)
    record(benchmark, "forward+backward/nn.Embedding")


@pytest.mark.benchmark(group="forward+backward")
def test_forward_backward_dynamic_embedding(benchmark):
    table = lfe.DynamicEmbedding(DIM, capacity=TABLE_ROWS)
    table.extend(torch.arange(TABLE_ROWS) * 7 + 11)
    ids = batch_ids()

    def step():
        table.weight.grad = None
        table(ids).sum().backward()

    benchmark(step)
    record(benchmark, "forward+backward/DynamicEmbedding")


# Append stream ------------------------------------------------------------------------------


def new_rows(kind: str) -> torch.Tensor:
    if kind == "zeros":
        return torch.zeros(ROWS_PER_APPEND, DIM)
    # Sampled as lfe.init.Random does (float64, then cast), so both sides pay the same RNG.
    return (torch.randn(ROWS_PER_APPEND, DIM, dtype=torch.float64) * NEW_ROW_STD).float()


def stream_ids(append: int) -> torch.Tensor:
    start = STREAM_START_ROWS + append * ROWS_PER_APPEND
    return torch.arange(start, start + ROWS_PER_APPEND)


@pytest.mark.parametrize("kind", ["zeros", "random"])
def test_append_stream_torch_cat(benchmark, kind):
    benchmark.group = f"append stream ({kind})"

    def setup():
        return (nn.Embedding(STREAM_START_ROWS, DIM),), {}

    def stream(table):
        for _ in range(APPENDS):
            weight = torch.cat([table.weight.detach(), new_rows(kind)])
            table = nn.Embedding.from_pretrained(weight, freeze=False)
        return table

    benchmark.pedantic(stream, setup=setup, rounds=1, iterations=1)
    record(benchmark, f"append stream ({kind})/torch.cat rebuild")


@pytest.mark.parametrize("kind", ["zeros", "random"])
def test_append_stream_dynamic_embedding(benchmark, kind):
    benchmark.group = f"append stream ({kind})"
    init = lfe.init.Zeros() if kind == "zeros" else lfe.init.Random(std=NEW_ROW_STD)

    def setup():
        # Default growth: capacity doubles once during the stream, as it would in production.
        table = lfe.DynamicEmbedding(DIM, init=lfe.init.Zeros(), capacity=STREAM_START_ROWS)
        table.extend(torch.arange(STREAM_START_ROWS))
        table.init = init
        return (table.train(),), {}

    def stream(table):
        for append in range(APPENDS):
            table.extend(stream_ids(append))
        assert table.num_embeddings == STREAM_START_ROWS + APPENDS * ROWS_PER_APPEND

    benchmark.pedantic(stream, setup=setup, rounds=3, iterations=1)
    record(benchmark, f"append stream ({kind})/DynamicEmbedding.extend")
