"""Pure-PyTorch IdMap backend: a sorted key array searched with `torch.searchsorted`.

It runs on any device torch supports and needs no compiler. Lookups are O(log n) per ID and
an insert merges the new keys into the sorted array in O(n + k), which keeps it usable at
millions of IDs; the compiled hash tables are the fast path.
"""

from __future__ import annotations

import torch

from lfe._ids import first_occurrence_unique

_ID_BYTES = 8
_MAX_IDS = (2**63 - 1) // _ID_BYTES  # beyond this the byte size of the array overflows int64


def _empty_ids(count: int, device: torch.device, argument: str) -> torch.Tensor:
    """An uninitialised int64 tensor of `count` IDs on `device`.

    Raises ValueError when no tensor can have that many elements, and MemoryError when the
    allocation fails; both name `argument`, the caller's parameter that asked for `count`.
    """
    if count > _MAX_IDS:
        raise ValueError(
            f"{argument}={count} is too large: {count} int64 IDs need 2**63 bytes or more"
        )
    try:
        return torch.empty(count, dtype=torch.int64, device=device)
    except RuntimeError as error:  # torch.OutOfMemoryError on CUDA is a RuntimeError too
        raise MemoryError(
            f"{argument}={count} needs {count * _ID_BYTES} bytes of IDs on {device}, which "
            f"could not be allocated; pass a smaller {argument}"
        ) from error


class TorchIdMapBackend:
    name = "torch"

    def __init__(self, device: torch.device, capacity: int = 0) -> None:
        self.device = device
        self._size = 0
        # IDs in row order, with spare room so that appends are amortised O(k).
        self._ids_by_row = _empty_ids(max(capacity, 16), device, "capacity")
        self._sorted_keys = torch.empty(0, dtype=torch.int64, device=device)
        self._sorted_rows = torch.empty(0, dtype=torch.int64, device=device)

    def size(self) -> int:
        return self._size

    def capacity(self) -> int:
        return self._ids_by_row.numel()

    def ids(self) -> torch.Tensor:
        return self._ids_by_row[: self._size].clone()

    def reserve(self, num_ids: int) -> None:
        if num_ids > self._ids_by_row.numel():
            grown = _empty_ids(num_ids, self.device, "num_ids")
            grown[: self._size] = self._ids_by_row[: self._size]
            self._ids_by_row = grown

    def lookup(self, ids: torch.Tensor) -> torch.Tensor:
        if self._size == 0 or ids.numel() == 0:
            return torch.full_like(ids, -1)
        positions = torch.searchsorted(self._sorted_keys, ids).clamp_(max=self._size - 1)
        found = self._sorted_keys[positions] == ids
        return torch.where(found, self._sorted_rows[positions], torch.full_like(ids, -1))

    def insert(self, ids: torch.Tensor) -> torch.Tensor:
        rows = self.lookup(ids)
        missing = rows < 0
        if not bool(missing.any()):
            return rows

        missing_ids = ids[missing]
        new_ids = first_occurrence_unique(missing_ids)
        new_sorted, order = torch.sort(new_ids)
        first_new_row = self._size
        rows[missing] = first_new_row + order[torch.searchsorted(new_sorted, missing_ids)]

        self._append_in_row_order(new_ids)
        self._merge_sorted(new_sorted, first_new_row + order)
        return rows

    def truncate(self, num_ids: int) -> None:
        if num_ids >= self._size:
            return
        keep = self._sorted_rows < num_ids
        self._sorted_keys = self._sorted_keys[keep]
        self._sorted_rows = self._sorted_rows[keep]
        self._size = num_ids

    def _append_in_row_order(self, new_ids: torch.Tensor) -> None:
        needed = self._size + new_ids.numel()
        if needed > self._ids_by_row.numel():
            self.reserve(max(needed, 2 * self._ids_by_row.numel()))
        self._ids_by_row[self._size : needed] = new_ids
        self._size = needed

    def _merge_sorted(self, new_keys: torch.Tensor, new_rows: torch.Tensor) -> None:
        old_count = self._sorted_keys.numel()
        total = old_count + new_keys.numel()
        # Where each new key lands in the merged array: its insertion point among the old
        # keys plus the number of new keys before it.
        new_positions = torch.searchsorted(self._sorted_keys, new_keys)
        new_positions += torch.arange(new_keys.numel(), device=self.device)
        is_new = torch.zeros(total, dtype=torch.bool, device=self.device)
        is_new[new_positions] = True

        merged_keys = torch.empty(total, dtype=torch.int64, device=self.device)
        merged_rows = torch.empty(total, dtype=torch.int64, device=self.device)
        merged_keys[new_positions] = new_keys
        merged_rows[new_positions] = new_rows
        merged_keys[~is_new] = self._sorted_keys
        merged_rows[~is_new] = self._sorted_rows
        self._sorted_keys, self._sorted_rows = merged_keys, merged_rows
