"""The "cpu" IdMap backend: the C++ open-addressing hash table of the extension `lfe._C`.

Lookups probe with software prefetch and spread large batches over OpenMP threads; inserts
are single-threaded so that rows are numbered deterministically, exactly as on the "torch"
backend. The table itself is `lfe._C.CpuIdMap` (csrc/cpu/id_map_cpu.h).
"""

from __future__ import annotations

import torch

from lfe.id_map.compiled import _C, CompiledIdMapBackend


def is_built() -> bool:
    """Whether the C++ extension with the CPU hash table is importable."""
    return _C is not None and hasattr(_C, "CpuIdMap")


class CpuIdMapBackend(CompiledIdMapBackend):
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
        try:
            self._table = _C.CpuIdMap(capacity, max_load_factor)
        except (ValueError, MemoryError) as error:
            raise type(error)(f"capacity={capacity}: {error}") from error

    def reserve(self, num_ids: int) -> None:
        """Make room for `num_ids` IDs without further growth; on failure nothing changes."""
        try:
            self._table.reserve(num_ids)
        except (ValueError, MemoryError) as error:
            raise type(error)(f"num_ids={num_ids}: {error}") from error

    def mean_probe_length(self, ids: torch.Tensor) -> float:
        """Mean number of slots a lookup of `ids` examines (a diagnostic; 1.0 is ideal)."""
        return self._table.mean_probe_length(ids)
