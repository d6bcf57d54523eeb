"""The "cuda" IdMap backend: the open-addressing hash table in GPU memory of `lfe._C`.

Lookups are one bulk kernel; an insert deduplicates the batch's new IDs on the device and
numbers them by a prefix sum in first-occurrence order, so the map equals the CPU and
"torch" maps for the same stream of batches. The table is `lfe._C.CudaIdMap`
(csrc/cuda/id_map_cuda.cuh); it runs on torch's current CUDA stream and allocates through
torch's caching allocator.

Calls on one map must be ordered: issue them on one stream (or synchronise between streams),
as for any tensor shared across streams.
"""

from __future__ import annotations

import torch

try:
    from lfe import _C
except ImportError:  # extension not built: is_built() says so and IdMap falls back
    _C = None


def is_built() -> bool:
    """Whether the extension `lfe._C` was built with the CUDA hash table."""
    return _C is not None and hasattr(_C, "CudaIdMap")


class CudaIdMapBackend:
    """IdMap backend over `lfe._C.CudaIdMap`, for tensors on one CUDA device.

    Args:
        device: a CUDA device; without an index, the current CUDA device.
        capacity: number of IDs that fit before the first growth (a hint).
    """

    name = "cuda"

    def __init__(self, device: torch.device | str, capacity: int = 0) -> None:
        if not is_built():
            raise RuntimeError(
                "the 'cuda' IdMap backend needs lfe._C built with CUDA, which it was not; "
                "build it with `pip install --no-build-isolation .` where torch has CUDA and "
                "nvcc is on the PATH (LFE_FORCE_CUDA=1 forces the attempt)"
            )
        device = torch.device(device)
        if device.type != "cuda":
            raise ValueError(f"the 'cuda' IdMap backend needs a cuda device, got {device}")
        index = device.index if device.index is not None else torch.cuda.current_device()
        self.device = torch.device("cuda", index)
        self._table = _C.CudaIdMap(index, capacity)

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
        """All IDs in row order, as a new 1-D int64 CUDA tensor."""
        return self._table.ids()

    def capacity(self) -> int:
        """Number of hash slots allocated in GPU memory."""
        return self._table.capacity()

    def reserve(self, num_ids: int) -> None:
        """Make room for `num_ids` IDs without further growth."""
        self._table.reserve(num_ids)

    def truncate(self, num_ids: int) -> None:
        """Forget every ID whose row is >= `num_ids`."""
        self._table.truncate(num_ids)
