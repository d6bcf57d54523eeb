"""Deterministic scatter-add: the backward of a gather or a pooled gather.

Entries are sorted by target row (stable), so each row's contributions form one segment,
and one program sums a segment in sorted order. No atomics: two runs give bit-identical
gradients, and every used row is written once.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._launch import accumulator, block_d


@triton.jit
def _segment_scatter_kernel(
    grad_ptr,
    grad_stride,
    source_ptr,
    position_ptr,
    scale_ptr,
    argmax_ptr,
    argmax_stride,
    indptr_ptr,
    target_ptr,
    out_ptr,
    out_stride,
    dim,
    HAS_SCALE: tl.constexpr,
    HAS_ARGMAX: tl.constexpr,
    HAS_TARGET: tl.constexpr,
    ACC_DTYPE: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    """Sum the entries of segment s = indptr[s]:indptr[s+1] (entries sorted by target row).

    grad: (grad_rows, dim) float, row stride `grad_stride`, unit column stride.
    source: (nnz,) int64, the grad row each sorted entry reads.
    position: (nnz,) int64, each sorted entry's position before sorting (HAS_ARGMAX only).
    scale: (nnz,) float, a factor per sorted entry (HAS_SCALE only).
    argmax: (grad_rows, dim) int64; with HAS_ARGMAX an entry adds only the columns whose
    argmax equals its position (the max-pooling backward).
    target: (segments,) int64 output row of each segment when HAS_TARGET, else row s.
    out: float, row stride `out_stride`; receives the sum cast to its dtype.
    """
    segment = tl.program_id(0)
    cols = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
    mask = cols < dim
    start = tl.load(indptr_ptr + segment)
    end = tl.load(indptr_ptr + segment + 1)

    # A fixed, sequential order of additions is what makes the result bit-reproducible.
    total = tl.zeros([BLOCK_D], dtype=ACC_DTYPE)
    for entry in range(start, end):
        source = tl.load(source_ptr + entry)
        values = tl.load(grad_ptr + source * grad_stride + cols, mask=mask, other=0.0)
        values = values.to(ACC_DTYPE)
        if HAS_SCALE:
            values *= tl.load(scale_ptr + entry).to(ACC_DTYPE)
        if HAS_ARGMAX:
            position = tl.load(position_ptr + entry)
            winner = tl.load(argmax_ptr + source * argmax_stride + cols, mask=mask, other=-1)
            values = tl.where(winner == position, values, 0.0)
        total += values

    if HAS_TARGET:
        out_row = tl.load(target_ptr + segment)
    else:
        out_row = segment.to(tl.int64)
    tl.store(out_ptr + out_row * out_stride + cols, total.to(out_ptr.dtype.element_ty), mask=mask)


def sort_rows(rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Group the 1-D int64 `rows` by value: (unique_rows, indptr, order).

    order: (n,) stable sorting permutation, so equal rows keep their input order.
    unique_rows: (u,) ascending; indptr: (u + 1,) int64 segment boundaries in sorted order.
    """
    sorted_rows, order = torch.sort(rows, stable=True)
    unique_rows, counts = torch.unique_consecutive(sorted_rows, return_counts=True)
    indptr = torch.zeros(unique_rows.numel() + 1, dtype=torch.int64, device=rows.device)
    torch.cumsum(counts, 0, out=indptr[1:])
    return unique_rows, indptr, order


def scatter_add(
    grad: torch.Tensor,
    rows: torch.Tensor,
    *,
    source: torch.Tensor | None = None,
    scale: torch.Tensor | None = None,
    argmax: torch.Tensor | None = None,
    out: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum contributions per target row, deterministically: (unique_rows, grad_rows).

    Entry j (of n) adds `scale[j] * grad[source[j]]` to row `rows[j]`; `source` defaults to j
    (grad has one row per entry) and `scale` to 1. With `argmax` (grad_rows, dim) int64,
    entry j adds only the columns c where argmax[source[j], c] == j (max pooling).

    grad: (grad_rows, dim) float, unit column stride. Sums run in float32 (float64 for float64
    grad) and are cast to grad's dtype. unique_rows: (u,) ascending int64. grad_rows: (u, dim),
    or, when `out` (table_rows, dim) is given, the sums go to out[unique_rows] (other rows
    untouched) and grad_rows is `out`.
    """
    dim = grad.shape[1]
    unique_rows, indptr, order = sort_rows(rows)
    num_segments = unique_rows.numel()
    writes_to_table = out is not None
    if out is None:
        out = torch.empty(num_segments, dim, dtype=grad.dtype, device=grad.device)
    if num_segments == 0 or dim == 0:
        return unique_rows, out

    sorted_source = order if source is None else source[order]
    sorted_scale = None if scale is None else scale[order]
    BLOCK_D = block_d(dim)
    grid = (num_segments, triton.cdiv(dim, BLOCK_D))
    _segment_scatter_kernel[grid](
        grad, grad.stride(0), sorted_source, order,
        sorted_scale if sorted_scale is not None else grad,
        argmax if argmax is not None else order,
        argmax.stride(0) if argmax is not None else 0,
        indptr, unique_rows, out, out.stride(0), dim,
        HAS_SCALE=scale is not None, HAS_ARGMAX=argmax is not None,
        HAS_TARGET=writes_to_table, ACC_DTYPE=accumulator(grad.dtype), BLOCK_D=BLOCK_D,
    )  # fmt: skip
    return unique_rows, out
