"""`lfe.IdMap`: the user-facing hash table from raw int64 IDs to row indices."""

from __future__ import annotations

import logging
import numbers
import os
from typing import Any

import numpy as np
import torch

from lfe._ids import as_ids, first_occurrence_unique
from lfe.id_map.backend import IdMapBackend
from lfe.id_map.torch_backend import TorchIdMapBackend

logger = logging.getLogger(__name__)

BACKENDS = ("cpu", "cuda", "torch")
_warned_fallback = False

_BUILD_HINT = (
    "Build it with `pip install --no-build-isolation .` in an environment that already has "
    "torch (and, for 'cuda', a CUDA build of torch with nvcc on the PATH)."
)


def compiled_backend_class(name: str) -> type | None:
    """The class of compiled backend `name` ("cpu" or "cuda"), or None if it was not built."""
    try:
        if name == "cpu":
            from lfe.id_map.cpu_backend import CpuIdMapBackend, is_built

            return CpuIdMapBackend if is_built() else None
        if name == "cuda":
            from lfe.id_map.cuda_backend import CudaIdMapBackend, is_built

            return CudaIdMapBackend if is_built() else None
    except ImportError:
        return None
    raise ValueError(f"unknown compiled backend {name!r}")


def available_backends() -> list[str]:
    """Backends usable in this installation, best first."""
    return [name for name in ("cuda", "cpu") if compiled_backend_class(name)] + ["torch"]


def resolve_backend(backend: str | None, device: torch.device) -> str:
    """Choose the backend for `device`: the explicit one, LFE_BACKEND=torch, or the best built."""
    global _warned_fallback
    if backend is not None and backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS} or None, got {backend!r}")
    if os.environ.get("LFE_BACKEND", "").strip().lower() == "torch":
        return "torch"

    if backend is None:
        wanted = device.type if device.type in ("cpu", "cuda") else "torch"
        if wanted == "torch" or compiled_backend_class(wanted) is not None:
            return wanted
        if not _warned_fallback:
            logger.warning(
                "lfe: the compiled %r IdMap backend is not built, so the slower pure-PyTorch "
                "backend runs. %s",
                wanted,
                _BUILD_HINT,
            )
            _warned_fallback = True
        return "torch"

    if backend != "torch":
        if device.type != backend:
            raise ValueError(f"backend {backend!r} needs a {backend} device, got device {device}")
        if compiled_backend_class(backend) is None:
            raise RuntimeError(f"the {backend!r} IdMap backend was not built. {_BUILD_HINT}")
    return backend


def _make_backend(name: str, device: torch.device, capacity: int) -> IdMapBackend:
    if name == "torch":
        return TorchIdMapBackend(device, capacity)
    return compiled_backend_class(name)(device, capacity)


class IdMap:
    """A hash table from raw int64 IDs to dense row indices, living on one device.

    Rows are numbered 0, 1, 2, ... in the order IDs are first inserted, identically on
    every backend and device, so the same stream of batches gives the same map anywhere.

    Args:
        device: where the table and the IDs it accepts live (default: CPU).
        backend: "cpu" (C++ extension), "cuda" (CUDA extension), "torch" (pure PyTorch) or
            None for the best built backend for `device`. `LFE_BACKEND=torch` forces "torch".
        capacity: expected number of IDs; a hint only, the table grows as needed.
        max_ids: optional hard limit; an insert that would exceed it raises and changes nothing.
    """

    def __init__(
        self,
        device: torch.device | str | None = None,
        backend: str | None = None,
        capacity: int | None = None,
        *,
        max_ids: int | None = None,
    ) -> None:
        self.device = _normalized_device(device)
        if capacity is not None and not _is_count(capacity):
            raise ValueError(f"capacity must be an int in [0, 2**62) or None, got {capacity!r}")
        if max_ids is not None and not _is_count(max_ids):
            raise ValueError(f"max_ids must be an int in [0, 2**62) or None, got {max_ids!r}")
        self.backend = resolve_backend(backend, self.device)
        self.max_ids = None if max_ids is None else int(max_ids)
        self._impl = _make_backend(self.backend, self.device, int(capacity or 0))

    def __len__(self) -> int:
        return self._impl.size()

    def __repr__(self) -> str:
        return f"IdMap(len={len(self)}, device={self.device}, backend={self.backend!r})"

    def insert(self, ids: torch.Tensor) -> torch.Tensor:
        """Rows of `ids` (same shape), inserting unseen IDs in first-occurrence order."""
        ids = as_ids(ids, device=self.device)
        flat = ids.reshape(-1)
        if self.max_ids is not None:
            self._check_room_for(flat)
        return self._impl.insert(flat).reshape(ids.shape)

    def lookup(self, ids: torch.Tensor) -> torch.Tensor:
        """Rows of `ids` (same shape), -1 where an ID is unknown. Never changes the map."""
        ids = as_ids(ids, device=self.device)
        return self._impl.lookup(ids.reshape(-1)).reshape(ids.shape)

    def contains(self, ids: torch.Tensor) -> torch.Tensor:
        """Boolean tensor of the shape of `ids`: which IDs are in the map."""
        return self.lookup(ids) >= 0

    def ids(self) -> torch.Tensor:
        """All IDs in row order (a new int64 tensor on the map's device)."""
        return self._impl.ids()

    def reserve(self, num_ids: int) -> None:
        """Make room for `num_ids` IDs, so inserting up to that many never rehashes."""
        if not _is_count(num_ids):
            raise ValueError(f"num_ids must be an int in [0, 2**62), got {num_ids!r}")
        self._impl.reserve(int(num_ids))

    def truncate(self, num_ids: int) -> None:
        """Forget the IDs with rows >= `num_ids`; used to undo an extension that failed."""
        if not _is_int(num_ids) or not 0 <= num_ids <= len(self):
            raise ValueError(f"num_ids must be an int in [0, {len(self)}], got {num_ids!r}")
        self._impl.truncate(int(num_ids))

    def to(self, device: torch.device | str) -> IdMap:
        """This map on `device` (itself if it is already there), with the same rows.

        The backend follows the device: "torch" stays "torch", otherwise the best built
        backend for the new device is used.
        """
        device = _normalized_device(device)
        if device == self.device:
            return self
        backend = "torch" if self.backend == "torch" else None
        moved = IdMap(device, backend, len(self), max_ids=self.max_ids)
        moved.load_state_dict(self.state_dict())
        return moved

    def __getstate__(self) -> dict[str, Any]:
        # Compiled tables cannot be pickled; their IDs in row order rebuild them exactly.
        return {
            "device": self.device,
            "backend": self.backend,
            "max_ids": self.max_ids,
            "ids": self.ids().cpu(),
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.device, self.backend, self.max_ids = (
            state["device"],
            state["backend"],
            state["max_ids"],
        )
        self._impl = _make_backend(self.backend, self.device, state["ids"].numel())
        self._impl.insert(state["ids"].to(self.device))

    def state_dict(self) -> dict[str, Any]:
        """`{"ids": int64 tensor of IDs in row order}`; loads on any backend or device."""
        return {"ids": self.ids()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Replace the map's contents by a saved one. On error the map is unchanged."""
        ids = _ids_from_state(state_dict).to(self.device)
        if self.max_ids is not None and ids.numel() > self.max_ids:
            raise ValueError(f"state_dict holds {ids.numel()} IDs but max_ids is {self.max_ids}")
        fresh = _make_backend(self.backend, self.device, ids.numel())
        fresh.insert(ids)
        self._impl = fresh

    def _check_room_for(self, flat_ids: torch.Tensor) -> None:
        unknown = flat_ids[self._impl.lookup(flat_ids) < 0]
        new_count = first_occurrence_unique(unknown).numel()
        if len(self) + new_count > self.max_ids:
            raise RuntimeError(
                f"inserting ids would add {new_count} IDs to a map of {len(self)}, over its "
                f"limit of {self.max_ids} (max_ids, or max_rows of an embedding module); "
                "nothing was inserted"
            )


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_)


def _is_count(value: Any) -> bool:
    """A number of IDs a table could be asked to hold (beyond 2**62 no memory could)."""
    return _is_int(value) and 0 <= value < 2**62


def _normalized_device(device: torch.device | str | None) -> torch.device:
    """`device` with an explicit index for CUDA, since tensors always report one."""
    device = torch.device(device if device is not None else "cpu")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            f"device {device} was asked for, but torch has no usable CUDA device (torch "
            f"{torch.__version__}, CUDA build: {torch.version.cuda is not None})"
        )
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", torch.cuda.current_device())
    return device


def _ids_from_state(state_dict: dict[str, Any]) -> torch.Tensor:
    if not isinstance(state_dict, dict) or "ids" not in state_dict:
        raise ValueError("state_dict must be a dict with an 'ids' entry (IDs in row order)")
    ids = state_dict["ids"]
    if not isinstance(ids, torch.Tensor) or ids.dim() != 1:
        raise ValueError("state_dict['ids'] must be a 1-D int64 tensor of IDs in row order")
    ids = as_ids(ids, name="state_dict['ids']").cpu()
    if torch.unique(ids).numel() != ids.numel():
        raise ValueError("state_dict['ids'] holds duplicate IDs, so it cannot be a valid map")
    return ids
