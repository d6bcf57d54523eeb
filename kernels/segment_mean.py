"""Segment mean: new rows as weighted means of existing rows plus noise, written in place.

This is how a table initialises appended rows: the cold-start strategies describe each new
row as a CSR segment of existing rows (a `SegmentMean` recipe), and one launch writes all
of them straight into the table's spare capacity.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._launch import accumulator, block_d


@triton.jit
def _segment_mean_kernel(
    weight_ptr,
    weight_stride,
    indptr_ptr,
    indices_ptr,
    weights_ptr,
    noise_ptr,
    noise_stride,
    out_ptr,
    out_stride,
    dim,
    HAS_WEIGHTS: tl.constexpr,
    HAS_NOISE: tl.constexpr,
    ACC_DTYPE: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    """out[i] = sum_j w_j * weight[indices[j]] / sum_j w_j + noise[i], j in indptr[i]:indptr[i+1].

    weight: (table_rows, dim) float, row stride `weight_stride`, unit column stride.
    indptr: (k + 1,) int64; indices: (nnz,) int64 rows of weight.
    weights: (nnz,) float (HAS_WEIGHTS; else every w_j = 1).
    noise: (k, dim) float (HAS_NOISE), row stride `noise_stride`.
    out: (k, dim) float, row stride `out_stride`; may be a slice of the same storage as weight
    as long as no index points into it (new rows read only existing rows).
    An empty segment gives zero plus noise; weights summing to zero divide by one instead.
    """
    new_row = tl.program_id(0)
    cols = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
    mask = cols < dim
    start = tl.load(indptr_ptr + new_row)
    end = tl.load(indptr_ptr + new_row + 1)

    total = tl.zeros([BLOCK_D], dtype=ACC_DTYPE)
    weight_sum = tl.zeros([1], dtype=ACC_DTYPE)
    for entry in range(start, end):
        row = tl.load(indices_ptr + entry)
        values = tl.load(weight_ptr + row * weight_stride + cols, mask=mask, other=0.0)
        values = values.to(ACC_DTYPE)
        if HAS_WEIGHTS:
            entry_weight = tl.load(weights_ptr + entry).to(ACC_DTYPE)
            values *= entry_weight
            weight_sum += entry_weight
        else:
            weight_sum += 1.0
        total += values

    # Dividing by 1 where the weights sum to 0 keeps an empty segment's zero total (no NaN).
    mean = total / tl.where(weight_sum == 0.0, 1.0, weight_sum)
    if HAS_NOISE:
        noise_offsets = new_row.to(tl.int64) * noise_stride + cols
        mean += tl.load(noise_ptr + noise_offsets, mask=mask, other=0.0).to(ACC_DTYPE)
    out_offsets = new_row.to(tl.int64) * out_stride + cols
    tl.store(out_ptr + out_offsets, mean.to(out_ptr.dtype.element_ty), mask=mask)


def segment_mean(
    weight: torch.Tensor,
    indptr: torch.Tensor,
    indices: torch.Tensor,
    weights: torch.Tensor | None = None,
    noise: torch.Tensor | None = None,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """New rows as segment means of `weight` rows plus noise: (k, dim), k = len(indptr) - 1.

    weight: (table_rows, dim); indptr: (k + 1,) int64; indices: (nnz,) int64;
    weights: (nnz,) float or None; noise: (k, dim) or None (unit column stride).
    out: (k, dim) with unit column stride, e.g. `storage[start : start + k]`; allocated in
    weight's dtype when None. Sums run in float32 (float64 for float64 weight).
    """
    num_new_rows, dim = indptr.numel() - 1, weight.shape[1]
    if out is None:
        out = torch.empty(num_new_rows, dim, dtype=weight.dtype, device=weight.device)
    if num_new_rows == 0 or dim == 0:
        return out

    BLOCK_D = block_d(dim)
    grid = (num_new_rows, triton.cdiv(dim, BLOCK_D))
    _segment_mean_kernel[grid](
        weight, weight.stride(0), indptr, indices,
        weights if weights is not None else indptr,
        noise if noise is not None else out, noise.stride(0) if noise is not None else 0,
        out, out.stride(0), dim,
        HAS_WEIGHTS=weights is not None, HAS_NOISE=noise is not None,
        ACC_DTYPE=accumulator(weight.dtype), BLOCK_D=BLOCK_D,
    )  # fmt: skip
    return out
