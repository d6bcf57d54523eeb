"""Row gather: `out[i] = weight[rows[i]]`, the forward of an embedding lookup."""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._launch import ELEMENTS_PER_TILE, block_d


@triton.jit
def _gather_kernel(
    weight_ptr,
    weight_stride,
    rows_ptr,
    out_ptr,
    out_stride,
    num_rows,
    dim,
    BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    """Copy rows of `weight` into `out`, one (BLOCK_N, BLOCK_D) tile per program.

    weight: (table_rows, dim) any float dtype, row stride `weight_stride`, unit column stride.
    rows: (num_rows,) int64 row indices into weight, all in range.
    out: (num_rows, dim) weight's dtype, row stride `out_stride`.
    """
    row_block = tl.program_id(0)
    column_block = tl.program_id(1)
    offsets = row_block * BLOCK_N + tl.arange(0, BLOCK_N)
    cols = column_block * BLOCK_D + tl.arange(0, BLOCK_D)
    row_mask = offsets < num_rows
    mask = row_mask[:, None] & (cols[None, :] < dim)

    # rows are int64, so row * stride cannot overflow on tables past 2**31 elements.
    rows = tl.load(rows_ptr + offsets, mask=row_mask, other=0)
    values = tl.load(weight_ptr + rows[:, None] * weight_stride + cols[None, :], mask=mask)
    out_offsets = offsets.to(tl.int64)[:, None] * out_stride + cols[None, :]
    tl.store(out_ptr + out_offsets, values, mask=mask)


def gather(weight: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """`weight[rows]` for a 2-D weight (unit column stride) and 1-D int64 rows: (n, dim)."""
    num_rows, dim = rows.numel(), weight.shape[1]
    out = torch.empty(num_rows, dim, dtype=weight.dtype, device=weight.device)
    if num_rows == 0 or dim == 0:
        return out

    BLOCK_D = block_d(dim)
    BLOCK_N = max(1, min(ELEMENTS_PER_TILE // BLOCK_D, triton.next_power_of_2(num_rows)))
    grid = (triton.cdiv(num_rows, BLOCK_N), triton.cdiv(dim, BLOCK_D))
    _gather_kernel[grid](
        weight, weight.stride(0), rows, out, out.stride(0), num_rows, dim,
        BLOCK_N=BLOCK_N, BLOCK_D=BLOCK_D,
    )  # fmt: skip
    return out
