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

from lfe.id_map.compiled import _C, CompiledIdMapBackend


def is_built() -> bool:
    """Whether the extension `lfe._C` was built with the CUDA hash table."""
    return _C is not None and hasattr(_C, "CudaIdMap")


class CudaIdMapBackend(CompiledIdMapBackend):
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
