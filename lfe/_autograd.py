"""Autograd functions of the Triton data path (CUDA tensors, or CPU under the interpreter).

Forward passes call the gather kernels of `lfe.kernels`; backward passes call the
deterministic scatter-add, so gradients are bit-identical from run to run and reach only
the rows that were used. Gradients of the table come back dense (a zero tensor of the
table's shape with the used rows filled in) or, with `sparse=True`, as a coalesced sparse
COO tensor of the table's shape, as `torch.nn.Embedding(sparse=True)` does.
"""

from __future__ import annotations

from types import ModuleType

import torch


def _accumulator(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def _table_gradient(
    kernels: ModuleType,
    shape: torch.Size,
    sparse: bool,
    grad: torch.Tensor,
    rows: torch.Tensor,
    **contributions: torch.Tensor | None,
) -> torch.Tensor:
    """The table's gradient from per-entry contributions (see `lfe.kernels.scatter_add`)."""
    if sparse:
        unique_rows, grad_rows = kernels.scatter_add(grad, rows, **contributions)
        return torch.sparse_coo_tensor(
            unique_rows[None],
            grad_rows,
            shape,
            is_coalesced=True,
            check_invariants=False,
        )
    grad_weight = torch.zeros(shape, dtype=grad.dtype, device=grad.device)
    kernels.scatter_add(grad, rows, out=grad_weight, **contributions)
    return grad_weight


def _unit_column_stride(tensor: torch.Tensor) -> torch.Tensor:
    """The kernels index rows by stride but need adjacent columns (expanded grads lack it)."""
    return tensor if tensor.stride(-1) == 1 else tensor.contiguous()


class EmbeddingFunction(torch.autograd.Function):
    """out = weight[rows] for 1-D int64 rows: (n, dim); gradient to weight only."""

    @staticmethod
    def forward(ctx, weight, rows, sparse, kernels):
        ctx.save_for_backward(rows)
        ctx.weight_shape, ctx.sparse, ctx.kernels = weight.shape, sparse, kernels
        return kernels.gather(weight, rows)

    @staticmethod
    def backward(ctx, grad_out):
        (rows,) = ctx.saved_tensors
        grad_out = _unit_column_stride(grad_out)
        grad_weight = _table_gradient(ctx.kernels, ctx.weight_shape, ctx.sparse, grad_out, rows)
        return grad_weight, None, None, None


class EmbeddingBagFunction(torch.autograd.Function):
    """Per-bag pooling of weight[rows] (sum, mean or max) over CSR bags: (bags, dim).

    rows: (nnz,) int64; indptr: (bags + 1,) int64; per_sample_weights: (nnz,) or None,
    sum mode only, and differentiable like the table.
    """

    @staticmethod
    def forward(ctx, weight, rows, indptr, mode, per_sample_weights, sparse, kernels):
        out, argmax = kernels.pooled_gather(weight, rows, indptr, mode, per_sample_weights)
        # The table is kept only for the per-sample-weight gradient: a saved table would make
        # rows appended in place before the backward fail autograd's version check.
        weight_grad_input = weight if ctx.needs_input_grad[4] else None
        ctx.save_for_backward(weight_grad_input, rows, indptr, per_sample_weights, argmax)
        ctx.weight_shape, ctx.mode, ctx.sparse, ctx.kernels = weight.shape, mode, sparse, kernels
        return out

    @staticmethod
    def backward(ctx, grad_out):
        weight, rows, indptr, per_sample_weights, argmax = ctx.saved_tensors
        grad_out = _unit_column_stride(grad_out)
        counts = indptr[1:] - indptr[:-1]
        bags = torch.arange(counts.numel(), device=rows.device)
        # output_size spares CUDA a device-to-host sync to size the result.
        bag_of_entry = torch.repeat_interleave(bags, counts, output_size=rows.numel())

        grad_weight = grad_per_sample_weights = None
        if ctx.needs_input_grad[0]:
            scale = per_sample_weights
            if ctx.mode == "mean":
                bag_scale = 1.0 / counts.clamp(min=1).to(_accumulator(grad_out.dtype))
                scale = bag_scale[bag_of_entry]
            grad_weight = _table_gradient(
                ctx.kernels, ctx.weight_shape, ctx.sparse, grad_out, rows,
                source=bag_of_entry, scale=scale, argmax=argmax,
            )  # fmt: skip
        if per_sample_weights is not None and ctx.needs_input_grad[4]:
            # d out[b] / d w_j = weight[rows[j]] for entry j of bag b (sum mode only).
            accumulator = _accumulator(weight.dtype)
            products = grad_out[bag_of_entry].to(accumulator) * weight[rows].to(accumulator)
            grad_per_sample_weights = products.sum(1).to(per_sample_weights.dtype)
        return grad_weight, None, None, None, grad_per_sample_weights, None, None
