"""Side information passed to `extend`: checking its alignment and selecting new IDs' entries.

Side information is whatever the initialiser understands (lists, arrays, pandas Series,
tensors), one entry per ID; the table only needs to check its length and take the entries
of the IDs that turned out to be new.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch


def side_info_length(value: Any, key: str = "side information") -> int:
    if isinstance(value, torch.Tensor | np.ndarray):
        return value.shape[0] if value.ndim else 1
    if not hasattr(value, "__len__") or isinstance(value, str):
        raise TypeError(
            f"side information {key!r} must hold one entry per ID (a list, array, Series or "
            f"tensor), got {type(value).__name__}"
        )
    return len(value)


def select_side_info(
    side_info: Mapping[str, Any],
    rows: torch.Tensor,
    is_new: torch.Tensor,
    old_count: int,
    new_count: int,
) -> dict[str, Any]:
    """Side information of the new IDs, in row order (one entry per new row)."""
    if not side_info:
        return {}
    # Position in the input of the first occurrence of each new row.
    positions = torch.full((new_count,), rows.numel(), dtype=torch.int64, device=rows.device)
    candidates = torch.nonzero(is_new).squeeze(1)
    positions.scatter_reduce_(0, rows[is_new] - old_count, candidates, reduce="amin")
    index = positions.cpu().numpy()
    return {key: _take(value, positions, index) for key, value in side_info.items()}


def _take(value: Any, positions: torch.Tensor, index: np.ndarray) -> Any:
    if isinstance(value, torch.Tensor):
        return value[positions.to(value.device)]
    if isinstance(value, np.ndarray):
        return value[index]
    if hasattr(value, "iloc"):
        return value.iloc[index]
    if isinstance(value, Sequence):
        return [value[i] for i in index.tolist()]
    raise TypeError(f"side information of type {type(value).__name__} cannot be indexed")
