"""Pooled gather: one sum, mean or max of rows per bag, the forward of an embedding bag."""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._launch import accumulator, block_d

MODES = {"sum": 0, "mean": 1, "max": 2}


@triton.jit
def _pooled_gather_kernel(
    weight_ptr,
    weight_stride,
    rows_ptr,
    indptr_ptr,
    per_sample_weights_ptr,
    out_ptr,
    out_stride,
    argmax_ptr,
    argmax_stride,
    dim,
    MODE: tl.constexpr,
    HAS_WEIGHTS: tl.constexpr,
    ACC_DTYPE: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    """Pool the rows of bag b = rows[indptr[b]:indptr[b+1]], one (bag, column tile) per program.

    weight: (table_rows, dim) float, row stride `weight_stride`, unit column stride.
    rows: (nnz,) int64; indptr: (bags + 1,) int64, non-decreasing, from 0 to nnz.
    per_sample_weights: (nnz,) weight's dtype, read only when HAS_WEIGHTS (sum mode).
    out: (bags, dim) weight's dtype. MODE 0 sum, 1 mean (sum / bag size), 2 max.
    argmax: (bags, dim) int64, written in max mode only: the position j in rows (not the row)
    that gave the maximum, -1 for an empty bag; the backward routes gradients through it.
    An empty bag pools to zeros in every mode.
    """
    bag = tl.program_id(0)
    cols = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
    mask = cols < dim
    start = tl.load(indptr_ptr + bag)
    end = tl.load(indptr_ptr + bag + 1)

    if MODE == 2:
        best = tl.full([BLOCK_D], float("-inf"), dtype=ACC_DTYPE)
        best_position = tl.full([BLOCK_D], -1, dtype=tl.int64)
    else:
        total = tl.zeros([BLOCK_D], dtype=ACC_DTYPE)

    # One entry after another in bag order: the sum is the same on every run and the first of
    # equal maxima wins, so results do not depend on scheduling.
    for position in range(start, end):
        row = tl.load(rows_ptr + position)
        values = tl.load(weight_ptr + row * weight_stride + cols, mask=mask, other=0.0)
        values = values.to(ACC_DTYPE)
        if MODE == 2:
            better = values > best
            best = tl.where(better, values, best)
            best_position = tl.where(better, position, best_position)
        else:
            if HAS_WEIGHTS:
                values *= tl.load(per_sample_weights_ptr + position).to(ACC_DTYPE)
            total += values

    out_offsets = bag.to(tl.int64) * out_stride + cols
    if MODE == 2:
        # An empty bag keeps -inf and position -1; report zeros as torch does.
        pooled = tl.where(best_position >= 0, best, 0.0)
        argmax_offsets = bag.to(tl.int64) * argmax_stride + cols
        tl.store(argmax_ptr + argmax_offsets, best_position, mask=mask)
    elif MODE == 1:
        pooled = total / tl.maximum(end - start, 1).to(ACC_DTYPE)
    else:
        pooled = total
    tl.store(out_ptr + out_offsets, pooled.to(out_ptr.dtype.element_ty), mask=mask)


def pooled_gather(
    weight: torch.Tensor,
    rows: torch.Tensor,
    indptr: torch.Tensor,
    mode: str,
    per_sample_weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Pool rows of `weight` per bag: (bags, dim) in weight's dtype, and for mode "max" the
    (bags, dim) int64 argmax positions into `rows` (-1 for empty bags), else None.

    rows: (nnz,) int64; indptr: (bags + 1,) int64 bag boundaries; per_sample_weights: (nnz,),
    sum mode only.
    """
    num_bags, dim = indptr.numel() - 1, weight.shape[1]
    out = torch.empty(num_bags, dim, dtype=weight.dtype, device=weight.device)
    argmax = None
    if mode == "max":
        argmax = torch.empty(num_bags, dim, dtype=torch.int64, device=weight.device)
    if num_bags == 0 or dim == 0:
        return out, argmax

    BLOCK_D = block_d(dim)
    grid = (num_bags, triton.cdiv(dim, BLOCK_D))
    _pooled_gather_kernel[grid](
        weight, weight.stride(0), rows, indptr,
        per_sample_weights if per_sample_weights is not None else rows,
        out, out.stride(0),
        argmax if argmax is not None else out, argmax.stride(0) if argmax is not None else 0,
        dim,
        MODE=MODES[mode], HAS_WEIGHTS=per_sample_weights is not None,
        ACC_DTYPE=accumulator(weight.dtype), BLOCK_D=BLOCK_D,
    )  # fmt: skip
    return out, argmax
