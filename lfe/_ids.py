"""Validation of raw product IDs at the API boundary.

Every public entry point that takes IDs calls `as_ids` once; backends and kernels then
assume clean, contiguous int64 input.
"""

from __future__ import annotations

import torch

RESERVED_ID: int = -(2**63)
"""The one int64 value that is not a valid ID: hash tables use it to mark empty slots."""

# Integer dtypes whose every value fits in int64; they are widened. uint64 is not among them.
_WIDENED_DTYPES = frozenset(
    {torch.uint8, torch.int8, torch.int16, torch.int32, torch.uint16, torch.uint32}
)


def as_ids(ids: torch.Tensor, *, name: str = "ids", device: torch.device | None = None):
    """Return `ids` as a contiguous int64 tensor, or raise naming `name`.

    Raises `TypeError` for a non-tensor or a non-integer dtype, `ValueError` for a tensor on
    the wrong device or holding `RESERVED_ID`.
    """
    if not isinstance(ids, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of int64 IDs, got {type(ids).__name__}")
    if ids.dtype != torch.int64:
        if ids.dtype not in _WIDENED_DTYPES:
            raise TypeError(
                f"{name} must hold integer IDs (int64, or a narrower integer dtype that is "
                f"widened), got dtype {ids.dtype}"
            )
        ids = ids.to(torch.int64)
    if device is not None and ids.device != device:
        raise ValueError(f"{name} is on device {ids.device}, expected {device}")
    if ids.numel() and bool((ids == RESERVED_ID).any()):
        raise ValueError(
            f"{name} contains lfe.RESERVED_ID (-2**63), which marks empty hash-table slots "
            "and cannot be used as an ID"
        )
    return ids.contiguous()


def first_occurrence_unique(ids: torch.Tensor) -> torch.Tensor:
    """Distinct values of the 1-D tensor `ids`, ordered by their first occurrence."""
    if ids.numel() == 0:
        return ids
    unique, inverse = torch.unique(ids, return_inverse=True)
    positions = torch.arange(ids.numel(), device=ids.device)
    first = torch.full((unique.numel(),), ids.numel(), dtype=torch.int64, device=ids.device)
    first.scatter_reduce_(0, inverse, positions, reduce="amin")
    return unique[torch.argsort(first)]
