"""What the compiled IdMap backends share: a thin delegation to a table of `lfe._C`.

The extension's tables already take and return tensors (the binding turns them into
pointers and lengths), so a backend only chooses and constructs its table.
"""

from __future__ import annotations

import torch

try:
    from lfe import _C
except ImportError:  # extension not built: the backends' is_built() say so, IdMap falls back
    _C = None


class CompiledIdMapBackend:
    """Base of the "cpu" and "cuda" backends; subclasses set `_table` in `__init__`."""

    name: str
    device: torch.device

    def insert(self, ids: torch.Tensor) -> torch.Tensor:
        """Rows of `ids`; unseen IDs get rows len, len+1, ... in first-occurrence order."""
        return self._table.insert(ids)

    def lookup(self, ids: torch.Tensor) -> torch.Tensor:
        """Rows of `ids`, -1 for unknown IDs; never changes the map."""
        return self._table.lookup(ids)

    def contains(self, ids: torch.Tensor) -> torch.Tensor:
        """Bool tensor of the shape of `ids`: which IDs are in the map."""
        return self._table.contains(ids)

    def size(self) -> int:
        """Number of IDs (and rows) in the map."""
        return self._table.size()

    def ids(self) -> torch.Tensor:
        """All IDs in row order, as a new 1-D int64 tensor on the map's device."""
        return self._table.ids()

    def capacity(self) -> int:
        """Number of hash slots allocated."""
        return self._table.capacity()

    def reserve(self, num_ids: int) -> None:
        """Make room for `num_ids` IDs without further growth."""
        self._table.reserve(num_ids)

    def truncate(self, num_ids: int) -> None:
        """Forget every ID whose row is >= `num_ids`."""
        self._table.truncate(num_ids)
