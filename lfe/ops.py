"""The embedding data path: gathers, pooled gathers and row initialisation.

Every function here takes clean tensors (validated by the modules) and picks an
implementation by device: Triton kernels from `lfe.kernels` on CUDA tensors, PyTorch code
on others. Both give the same results (bit for bit for gathers and max pooling, up to
float32 rounding order for sums).

Environment switches, read at every call:

    LFE_FORCE_TRITON=1  run the Triton path on CPU tensors too; needs TRITON_INTERPRET=1 set
                        before Triton is first imported (used by the tests)
    LFE_BACKEND=torch   run the PyTorch path on CUDA tensors too
"""

from __future__ import annotations

import logging
import os
from types import ModuleType

import torch
import torch.nn.functional as F

from lfe._autograd import EmbeddingBagFunction, EmbeddingFunction
from lfe.init.base import InitialRows, SegmentMean

logger = logging.getLogger(__name__)

_kernels: ModuleType | None = None
_kernels_missing = False


def load_kernels() -> ModuleType | None:
    """The `lfe.kernels` module, or None (with one warning) when Triton is not installed."""
    global _kernels, _kernels_missing
    if _kernels is None and not _kernels_missing:
        try:
            import lfe.kernels as kernels

            _kernels = kernels
        except ModuleNotFoundError as error:
            if error.name != "triton":
                raise
            _kernels_missing = True
            logger.warning("Triton is not installed; CUDA tensors take the PyTorch data path.")
    return _kernels


def _interpreter_on() -> bool:
    return os.environ.get("TRITON_INTERPRET", "").strip().lower() in {"1", "true", "yes", "on"}


def uses_triton(tensor: torch.Tensor) -> bool:
    """Whether the data path for `tensor` runs the Triton kernels (see the module docstring)."""
    if os.environ.get("LFE_FORCE_TRITON", "").strip() == "1":
        if not tensor.is_cuda and not _interpreter_on():
            raise RuntimeError(
                "LFE_FORCE_TRITON=1 runs Triton kernels on CPU tensors, which needs Triton's "
                "interpreter: set TRITON_INTERPRET=1 before Triton is imported."
            )
        if load_kernels() is None:
            raise RuntimeError("LFE_FORCE_TRITON=1 needs Triton: pip install 'lfe[triton]'.")
        return True
    if not tensor.is_cuda or os.environ.get("LFE_BACKEND", "").strip().lower() == "torch":
        return False
    return load_kernels() is not None


def _flat_rows(rows: torch.Tensor) -> torch.Tensor:
    return rows.reshape(-1).to(torch.int64).contiguous()


def _unit_column_stride(weight: torch.Tensor) -> torch.Tensor:
    return weight if weight.stride(1) == 1 else weight.contiguous()


def embedding(weight: torch.Tensor, rows: torch.Tensor, sparse: bool = False) -> torch.Tensor:
    """`weight[rows]` with shape rows.shape + (dim,), differentiable with respect to weight."""
    if not uses_triton(weight):
        return F.embedding(rows, weight, sparse=sparse)

    flat_rows = _flat_rows(rows)
    out = EmbeddingFunction.apply(_unit_column_stride(weight), flat_rows, sparse, load_kernels())
    return out.view(*rows.shape, weight.shape[1])


def _bags(
    rows: torch.Tensor,
    offsets: torch.Tensor | None,
    per_sample_weights: torch.Tensor | None,
    include_last_offset: bool,
    padding_idx: int | None,
    num_table_rows: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Bags in CSR form: (rows (nnz,), indptr (bags + 1,), per_sample_weights (nnz,) or None),
    with entries equal to padding_idx dropped, as nn.EmbeddingBag leaves them out."""
    if rows.dim() == 2:
        num_bags, bag_size = rows.shape
        indptr = torch.arange(num_bags + 1, device=rows.device) * bag_size
    elif include_last_offset:
        indptr = offsets.to(torch.int64)
    else:
        end = torch.full((1,), rows.numel(), dtype=torch.int64, device=rows.device)
        indptr = torch.cat([offsets.to(torch.int64), end])
    rows = _flat_rows(rows)
    if per_sample_weights is not None:
        per_sample_weights = per_sample_weights.reshape(-1)

    if padding_idx is not None:
        padding_idx = padding_idx + num_table_rows if padding_idx < 0 else padding_idx
        rows, indptr, per_sample_weights = drop_bag_entries(
            rows != padding_idx, rows, indptr, per_sample_weights
        )
    return rows, indptr.contiguous(), per_sample_weights


def drop_bag_entries(
    keep: torch.Tensor,
    entries: torch.Tensor,
    offsets: torch.Tensor,
    per_sample_weights: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Bags without the entries where `keep` is False: (entries, offsets, weights).

    `offsets` are positions into `entries` (bag starts, optionally with the end); each is
    moved to the number of kept entries before it.
    """
    kept_before = torch.zeros(entries.numel() + 1, dtype=torch.int64, device=entries.device)
    torch.cumsum(keep, 0, out=kept_before[1:])
    weights = per_sample_weights[keep] if per_sample_weights is not None else None
    return entries[keep], kept_before[offsets], weights


def embedding_bag(
    weight: torch.Tensor,
    rows: torch.Tensor,
    offsets: torch.Tensor | None,
    mode: str,
    per_sample_weights: torch.Tensor | None = None,
    sparse: bool = False,
    padding_idx: int | None = None,
    *,
    include_last_offset: bool = False,
) -> torch.Tensor:
    """Pooled rows per bag (sum, mean or max), as `torch.nn.functional.embedding_bag`.

    rows: 1-D with `offsets` (bag starts; with include_last_offset also the end), or 2-D
    (bags, bag_size) with offsets None. Returns (bags, dim); an empty bag pools to zeros.
    """
    if not uses_triton(weight):
        return F.embedding_bag(
            rows,
            weight,
            offsets,
            mode=mode,
            per_sample_weights=per_sample_weights,
            sparse=sparse,
            padding_idx=padding_idx,
            include_last_offset=include_last_offset,
        )

    if per_sample_weights is not None and mode != "sum":
        raise ValueError(f"per_sample_weights needs mode='sum' (as in torch), got mode={mode!r}")
    if sparse and mode == "max":
        raise ValueError("max mode does not support sparse weights (as in torch)")
    flat_rows, indptr, flat_weights = _bags(
        rows, offsets, per_sample_weights, include_last_offset, padding_idx, weight.shape[0]
    )
    return EmbeddingBagFunction.apply(
        _unit_column_stride(weight), flat_rows, indptr, mode, flat_weights, sparse, load_kernels()
    )


def _segment_mean_triton(
    weight: torch.Tensor, recipe: SegmentMean, out: torch.Tensor | None
) -> torch.Tensor:
    noise = recipe.noise
    if noise is not None and noise.stride(-1) != 1:
        noise = noise.contiguous()
    return load_kernels().segment_mean(
        _unit_column_stride(weight.detach()),
        recipe.indptr.to(torch.int64).contiguous(),
        recipe.indices.to(torch.int64).contiguous(),
        None if recipe.weights is None else recipe.weights.contiguous(),
        noise,
        out=out,
    )


def segment_mean(weight: torch.Tensor, recipe: SegmentMean) -> torch.Tensor:
    """Evaluate a `SegmentMean` recipe over `weight`: a (k, dim) tensor in weight's dtype."""
    if uses_triton(weight):
        return _segment_mean_triton(weight, recipe, out=None)

    # Accumulate in float32 (float64 for float64 tables), as the Triton kernel does.
    accumulate = torch.float64 if weight.dtype == torch.float64 else torch.float32
    k = recipe.num_new_rows
    counts = recipe.indptr[1:] - recipe.indptr[:-1]
    segment_of = torch.repeat_interleave(torch.arange(k, device=weight.device), counts)
    gathered = weight.detach()[recipe.indices].to(accumulate)
    if recipe.weights is None:
        weights = torch.ones(recipe.indices.numel(), dtype=accumulate, device=weight.device)
    else:
        weights = recipe.weights.to(accumulate)

    totals = torch.zeros(k, weight.shape[1], dtype=accumulate, device=weight.device)
    totals.index_add_(0, segment_of, gathered * weights[:, None])
    weight_sums = torch.zeros(k, dtype=accumulate, device=weight.device)
    weight_sums.index_add_(0, segment_of, weights)
    means = totals / torch.where(weight_sums == 0, 1.0, weight_sums)[:, None]
    if recipe.noise is not None:
        means += recipe.noise.to(accumulate)
    return means.to(weight.dtype)


def materialize(weight: torch.Tensor, initial: InitialRows) -> torch.Tensor:
    """New rows as a dense (k, dim) tensor, whichever form the initialiser returned."""
    if isinstance(initial, SegmentMean):
        return segment_mean(weight, initial)
    return initial.to(weight.dtype)


def write_rows(storage: torch.Tensor, start: int, weight: torch.Tensor, initial: InitialRows):
    """Write the new rows into `storage[start : start + k]` (spare capacity, no grad).

    `weight` is the rows in use (a prefix of storage) that a recipe reads from. On the Triton
    path a recipe's rows are computed straight into storage, with no temporary.
    """
    with torch.no_grad():
        if isinstance(initial, SegmentMean) and uses_triton(storage):
            target = storage[start : start + initial.num_new_rows]
            if target.stride(-1) == 1:
                _segment_mean_triton(weight, initial, out=target)
                return
        rows = materialize(weight, initial)
        storage[start : start + rows.shape[0]] = rows
