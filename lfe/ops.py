"""The embedding data path: gathers, pooled gathers and row initialisation.

Every function here takes clean tensors (validated by the modules) and picks an
implementation by device: Triton kernels from `lfe.kernels` on CUDA tensors, PyTorch code
on others. Both give the same results.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lfe.init.base import InitialRows, SegmentMean


def embedding(weight: torch.Tensor, rows: torch.Tensor, sparse: bool = False) -> torch.Tensor:
    """`weight[rows]` with shape rows.shape + (dim,), differentiable with respect to weight."""
    return F.embedding(rows, weight, sparse=sparse)


def embedding_bag(
    weight: torch.Tensor,
    rows: torch.Tensor,
    offsets: torch.Tensor | None,
    mode: str,
    per_sample_weights: torch.Tensor | None = None,
    sparse: bool = False,
    padding_idx: int | None = None,
) -> torch.Tensor:
    """Pooled rows per bag (sum, mean or max), as `torch.nn.functional.embedding_bag`."""
    return F.embedding_bag(
        rows,
        weight,
        offsets,
        mode=mode,
        per_sample_weights=per_sample_weights,
        sparse=sparse,
        padding_idx=padding_idx,
    )


def segment_mean(weight: torch.Tensor, recipe: SegmentMean) -> torch.Tensor:
    """Evaluate a `SegmentMean` recipe over `weight`: a (k, dim) tensor in weight's dtype."""
    k = recipe.num_new_rows
    counts = recipe.indptr[1:] - recipe.indptr[:-1]
    segment_of = torch.repeat_interleave(torch.arange(k, device=weight.device), counts)
    gathered = weight.detach()[recipe.indices].to(torch.float32)
    if recipe.weights is None:
        weights = torch.ones(recipe.indices.numel(), device=weight.device)
    else:
        weights = recipe.weights.to(torch.float32)

    totals = torch.zeros(k, weight.shape[1], dtype=torch.float32, device=weight.device)
    totals.index_add_(0, segment_of, gathered * weights[:, None])
    weight_sums = torch.zeros(k, dtype=torch.float32, device=weight.device)
    weight_sums.index_add_(0, segment_of, weights)
    means = totals / torch.where(weight_sums == 0, 1.0, weight_sums)[:, None]
    if recipe.noise is not None:
        means += recipe.noise.to(torch.float32)
    return means.to(weight.dtype)


def materialize(weight: torch.Tensor, initial: InitialRows) -> torch.Tensor:
    """New rows as a dense (k, dim) tensor, whichever form the initialiser returned."""
    if isinstance(initial, SegmentMean):
        return segment_mean(weight, initial)
    return initial.to(weight.dtype)


def write_rows(storage: torch.Tensor, start: int, weight: torch.Tensor, initial: InitialRows):
    """Write the new rows into `storage[start : start + k]` (spare capacity, no grad).

    `weight` is the rows in use (a prefix of storage) that a recipe reads from.
    """
    with torch.no_grad():
        rows = materialize(weight, initial)
        storage[start : start + rows.shape[0]] = rows
