"""GPU benchmark of the Triton data-path kernels against torch, run by bench/gpu_check.sh.

    python bench/gpu_bench_kernels.py

Axes: 1M rows of dim 128 (float32) gathered from, appended to, or scatter-added into a
10M-row table. Each kernel is timed against its torch counterpart in the same run:

- gather: `lfe.kernels.gather` vs `torch.index_select`
- append: `lfe.kernels.segment_mean` writing 1M rows into spare capacity, one source row
  each (a Copy recipe), vs `index_select` into the same slice
- scatter-add: `lfe.kernels.scatter_add` (sort + deterministic segment sums, dense table
  gradient) vs `index_add_` (atomics, not deterministic) into a zero table

GB/s counts the bytes the operation must move (rows read + rows written, indices) and is
compared with the device-to-device copy bandwidth measured in the same run. Targets: gather
and append >= 80% of copy bandwidth, scatter-add >= 50%. Prints a Markdown table.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.gpu_common import copy_bandwidth_gbps, cuda_time_seconds, markdown_table  # noqa: E402

TABLE_ROWS, ROWS, DIM = 10_000_000, 1_000_000, 128
TARGETS = {"gather": 0.8, "append": 0.8, "scatter-add": 0.5}


def main() -> int:
    if not torch.cuda.is_available():
        print("gpu_bench_kernels: no CUDA device is visible; nothing to measure.")
        return 0
    if os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
        print("gpu_bench_kernels: unset TRITON_INTERPRET; interpreted kernels are not timed.")
        return 1
    from lfe.ops import load_kernels

    kernels = load_kernels()
    if kernels is None:
        print("gpu_bench_kernels: Triton is not installed (pip install 'lfe[triton]').")
        return 1

    generator = torch.Generator(device="cuda").manual_seed(0)
    storage = torch.randn(TABLE_ROWS + ROWS, DIM, device="cuda", generator=generator)
    table = storage[:TABLE_ROWS]
    rows = torch.randint(0, TABLE_ROWS, (ROWS,), device="cuda", generator=generator)
    grad = torch.randn(ROWS, DIM, device="cuda", generator=generator)
    indptr = torch.arange(ROWS + 1, device="cuda")
    row_bytes, index_bytes = DIM * table.element_size(), 8
    moved = 2 * ROWS * row_bytes + ROWS * index_bytes  # read rows + write rows + indices

    grad_table = torch.zeros_like(table)

    def scatter_torch():
        grad_table.zero_()
        grad_table.index_add_(0, rows, grad)

    def scatter_lfe():
        grad_table.zero_()
        kernels.scatter_add(grad, rows, out=grad_table)

    append_target = storage[TABLE_ROWS:]
    cases = {
        "gather": (
            lambda: torch.index_select(table, 0, rows),
            lambda: kernels.gather(table, rows),
        ),
        "append": (
            lambda: torch.index_select(table, 0, rows, out=append_target),
            lambda: kernels.segment_mean(table, indptr, rows, out=append_target),
        ),
        "scatter-add": (scatter_torch, scatter_lfe),
    }

    copy_gbps = copy_bandwidth_gbps()
    zero_seconds = cuda_time_seconds(grad_table.zero_)
    header = ["operation", "torch GB/s", "lfe GB/s", "lfe / copy bandwidth", "target", "met"]
    lines = []
    for name, (torch_fn, lfe_fn) in cases.items():
        torch_seconds, lfe_seconds = cuda_time_seconds(torch_fn), cuda_time_seconds(lfe_fn)
        if name == "scatter-add":
            # Zeroing the table is the same for both and not part of the scatter itself.
            torch_seconds, lfe_seconds = torch_seconds - zero_seconds, lfe_seconds - zero_seconds
        torch_gbps, lfe_gbps = moved / torch_seconds / 1e9, moved / lfe_seconds / 1e9
        share = lfe_gbps / copy_gbps
        met = "yes" if share >= TARGETS[name] else "no"
        lines.append([name, f"{torch_gbps:.0f}", f"{lfe_gbps:.0f}", f"{share:.0%}",
                      f">= {TARGETS[name]:.0%}", met])  # fmt: skip

    print(f"{torch.cuda.get_device_name()}: copy bandwidth {copy_gbps:.0f} GB/s; {ROWS:,} rows "
          f"of dim {DIM} (float32) from a {TABLE_ROWS:,}-row table")  # fmt: skip
    print(markdown_table(header, lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
