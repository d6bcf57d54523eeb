"""The "cpu" IdMap backend: the C++ open-addressing hash table of the extension `lfe._C`.

Lookups probe with software prefetch and spread large batches over OpenMP threads; inserts
are single-threaded so that rows are numbered deterministically, exactly as on the "torch"
backend. The table itself is `lfe._C.CpuIdMap` (csrc/cpu/id_map_cpu.h).
"""

from __future__ import annotations

import torch

try:
    from lfe import _C
except ImportError:  # extension not built: is_built() says so and IdMap falls back
    _C = None


def is_built() -> bool:
    """Whether the C++ extension with the CPU hash table is importable."""
    return _C is not None and hasattr(_C, "CpuIdMap")


class CpuIdMapBackend:
    """IdMap backend over `lfe._C.CpuIdMap`, for CPU tensors.

    Args:
        device: must be a CPU device.
        capacity: number of IDs that fit before the first growth (a hint).
        max_load_factor: largest fraction of occupied slots before the table grows, in (0, 1).
    """

    name = "cpu"

    def __init__(
        self, device: torch.device | str, capacity: int = 0, max_load_factor: float = 0.5
    ) -> None:
        if not is_built():
            raise RuntimeError(
                "the 'cpu' IdMap backend needs the C++ extension lfe._C, which was not built; "
                "build it with `pip install --no-build-isolation .`"
            )
        self.device = torch.device(device)
        if self.device.type != "cpu":
            raise ValueError(f"the 'cpu' IdMap backend needs a cpu device, got {self.device}")
        self._table = _C.CpuIdMap(capacity, max_load_factor)

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
        """All IDs in row order, as a new 1-D int64 tensor."""
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

    def mean_probe_length(self, ids: torch.Tensor) -> float:
        """Mean number of slots a lookup of `ids` examines (a diagnostic; 1.0 is ideal)."""
        return self._table.mean_probe_length(ids)
