"""The interface every IdMap backend implements.

Backends receive clean input: flat, contiguous int64 tensors on the map's device, with
no reserved ID. Validation happens once, in `lfe.IdMap`.
"""

from __future__ import annotations

from typing import Protocol

import torch


class IdMapBackend(Protocol):
    """A hash table from raw int64 ID to row index, rows numbered 0, 1, 2, ... by insertion."""

    name: str

    def insert(self, ids: torch.Tensor) -> torch.Tensor:
        """Rows of `ids` (1-D). Unseen IDs get rows len, len+1, ... in first-occurrence order."""

    def lookup(self, ids: torch.Tensor) -> torch.Tensor:
        """Rows of `ids` (1-D), -1 for unknown IDs; never changes the map."""

    def size(self) -> int:
        """Number of IDs (and rows) in the map."""

    def ids(self) -> torch.Tensor:
        """All IDs in row order, as a new 1-D int64 tensor."""

    def capacity(self) -> int:
        """Number of slots currently allocated (an implementation detail, for diagnostics)."""

    def reserve(self, num_ids: int) -> None:
        """Make room for `num_ids` IDs without further growth."""

    def truncate(self, num_ids: int) -> None:
        """Forget every ID whose row is >= `num_ids` (used to roll back a failed extension)."""
