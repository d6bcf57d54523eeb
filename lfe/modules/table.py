"""`DynamicTable`: the growing storage and ID map shared by the dynamic embedding modules.

The table keeps its rows in a storage tensor with spare capacity. The module's `weight`
parameter is a view of the rows in use, so appending rows within capacity copies nothing
and growth past capacity copies the table once per doubling: a stream of appends costs
amortised O(rows added). Rows are only ever appended; existing rows are never rewritten
by an extension.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from lfe import ops
from lfe._ids import as_ids
from lfe.id_map import IdMap
from lfe.init.base import Initializer, TableView
from lfe.modules.side_info import select_side_info, side_info_length
from lfe.optim import mark_growable

logger = logging.getLogger(__name__)

MISSING_MODES = ("init", "zeros", "error")


class DynamicTable(nn.Module):
    """Rows addressed by raw int64 IDs, growing as new IDs arrive. Base of the public modules.

    Args:
        embedding_dim: width of each row.
        init: cold-start strategy for new rows (default `lfe.init.Random()`).
        capacity: rows allocated up front; more are allocated as needed.
        dtype, device: of the rows.
        backend: IdMap backend, see `lfe.IdMap`.
        missing: what an unseen ID gives in eval mode: "init" (what the initialiser would
            give it, without inserting it), "zeros" or "error".
        max_rows: optional hard limit on the number of rows.
        growth_factor: how much capacity is multiplied by when it runs out.
        generator: random source for initialisers (default: torch's global generator).

    Growth changes the shape of `weight`, and autograd records a parameter's shape when a
    graph uses it: backpropagate a graph before the table grows again. When one forward
    looks the table up twice and the second lookup may add IDs, `extend` with all of the
    batch's IDs first.
    """

    def __init__(
        self,
        embedding_dim: int,
        *,
        init: Initializer | None = None,
        capacity: int = 1024,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
        backend: str | None = None,
        missing: str = "init",
        max_rows: int | None = None,
        growth_factor: float = 2.0,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        _check_arguments(embedding_dim, init, capacity, missing, growth_factor, dtype)
        if init is None:
            from lfe.init import Random

            init = Random()

        self.embedding_dim = embedding_dim
        self.init = init
        self.missing = missing
        self.growth_factor = growth_factor
        self.generator = generator
        device = torch.device(device if device is not None else "cpu")
        self.id_map = IdMap(device, backend, capacity, max_ids=max_rows)
        dtype = dtype or torch.get_default_dtype()
        self._storage = _allocate_rows(capacity, embedding_dim, dtype, device)
        self.weight = nn.Parameter(self._storage[:0])
        mark_growable(self.weight)

    # ----------------------------------------------------------------------------- properties

    @property
    def num_embeddings(self) -> int:
        """Number of rows in use (one per known ID)."""
        return len(self.id_map)

    @property
    def capacity(self) -> int:
        """Number of rows allocated, in use or spare."""
        return self._storage.shape[0]

    @property
    def device(self) -> torch.device:
        return self._storage.device

    def extra_repr(self) -> str:
        return (
            f"embedding_dim={self.embedding_dim}, num_embeddings={self.num_embeddings}, "
            f"capacity={self.capacity}, init={self.init!r}, backend={self.id_map.backend!r}, "
            f"missing={self.missing!r}"
        )

    # ------------------------------------------------------------------------------- growth

    def extend(self, ids: torch.Tensor, **side_info: Any) -> torch.Tensor:
        """Add the catalogue entries `ids` (1-D) before anyone interacts with them.

        Unseen IDs get new rows, initialised by the module's initialiser with `side_info`
        (keyword arguments aligned with `ids`, e.g. `category=...`, `features=...`); known
        IDs keep their rows. Returns the rows of `ids`. On error nothing is added.
        """
        ids = as_ids(ids, device=self.device)
        if ids.dim() != 1:
            raise ValueError(f"ids must be 1-D for extend, got shape {tuple(ids.shape)}")
        for key, value in side_info.items():
            if side_info_length(value, key) != ids.numel():
                raise ValueError(
                    f"side information {key!r} has {side_info_length(value)} entries but ids has "
                    f"{ids.numel()}; they must be aligned"
                )

        old_count = self.num_embeddings
        restore_random_state = self._random_state_restorer()
        try:
            rows = self._insert(ids, side_info)
            if side_info:
                try:
                    self.init.observe(ids, side_info)
                except BaseException:
                    self._forget_rows_from(old_count)
                    raise
        except BaseException:
            restore_random_state()
            raise
        return rows

    def _insert(self, flat_ids: torch.Tensor, side_info: Mapping[str, Any]) -> torch.Tensor:
        """Rows of `flat_ids`, appending and initialising rows for unseen IDs."""
        old_count = self.num_embeddings
        rows = self.id_map.insert(flat_ids)
        new_count = self.num_embeddings - old_count
        if new_count == 0:
            return rows

        try:
            is_new = rows >= old_count
            new_ids = torch.empty(new_count, dtype=torch.int64, device=self.device)
            new_ids[rows[is_new] - old_count] = flat_ids[is_new]
            new_side_info = select_side_info(side_info, rows, is_new, old_count, new_count)

            initial = self.init.initial_rows(self._view(old_count), new_ids, new_side_info)
            _check_initial_rows(initial, new_count, self.embedding_dim)
            self._reserve_rows(old_count + new_count)
            ops.write_rows(self._storage, old_count, self.weight.detach(), initial)
        except BaseException:
            self.id_map.truncate(old_count)
            raise

        self._use_rows(old_count + new_count)
        return rows

    def _forget_rows_from(self, count: int) -> None:
        """Undo a completed extension: the map and `weight` end at row `count` again."""
        self.id_map.truncate(count)
        self._point_weight_at(self._storage[:count])
        grad = self.weight.grad
        if grad is not None and grad.shape[0] > count:
            self.weight.grad = _resize_rows(grad, count) if grad.is_sparse else grad[:count]

    def _view(self, num_rows: int) -> TableView:
        return TableView(self._storage[:num_rows].detach(), self.id_map, self.generator)

    def _reserve_rows(self, needed: int) -> None:
        """Make the storage hold at least `needed` rows, copying the rows in use once."""
        if needed <= self.capacity:
            return
        new_capacity = max(needed, math.ceil(self.capacity * self.growth_factor), 16)
        storage = _allocate_rows(new_capacity, self.embedding_dim, self._storage.dtype, self.device)
        in_use = self.weight.shape[0]  # rows in use before this extension
        storage[:in_use] = self._storage[:in_use]
        self._storage = storage
        self._point_weight_at(storage[:in_use])
        logger.info("lfe: embedding storage grew to a capacity of %d rows", new_capacity)

    def _point_weight_at(self, rows: torch.Tensor) -> None:
        """Make `weight` (same Parameter object, so optimisers keep it) hold `rows`.

        Autograd caches a parameter's gradient accumulator together with the parameter's
        shape and only drops the cache when the dtype or device changes, not the shape. Passing
        through an empty tensor of another dtype drops it, so the next forward records the
        new shape. A graph built before the change must be backpropagated before it.
        """
        if rows.shape != self.weight.shape:
            other_dtype = torch.float64 if rows.dtype != torch.float64 else torch.float32
            self.weight.data = rows.new_empty(0, dtype=other_dtype)
        self.weight.data = rows

    def _use_rows(self, count: int) -> None:
        """Let `weight` cover the first `count` rows of storage (no copy)."""
        self._point_weight_at(self._storage[:count])
        grad = self.weight.grad
        if grad is not None and grad.shape[0] < count:
            # A gradient accumulated before the growth covers fewer rows; new rows have none.
            if grad.is_sparse:
                self.weight.grad = _resize_rows(grad, count)
            else:
                padded = grad.new_zeros(count, self.embedding_dim)
                padded[: grad.shape[0]] = grad
                self.weight.grad = padded

    # ------------------------------------------------------------------------------- lookup

    def _resolve_rows(self, flat_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows for `flat_ids` and the weight they index.

        In training, unseen IDs are inserted. In eval, unseen IDs resolve per `missing`:
        their rows are computed into spare storage past the rows in use (the map and the
        rows in use do not change) and the returned weight covers them.
        """
        if self.training:
            return self._insert(flat_ids, {}), self.weight

        rows = self.id_map.lookup(flat_ids)
        is_missing = rows < 0
        if not bool(is_missing.any()):
            return rows, self.weight
        if self.missing == "error":
            example = flat_ids[is_missing][:5].tolist()
            raise KeyError(
                f"ids holds {int(is_missing.sum())} IDs unknown to the table (e.g. {example}) "
                "and the module was created with missing='error'"
            )

        count = self.num_embeddings
        unknown_ids, inverse = torch.unique(flat_ids[is_missing], return_inverse=True)
        if self.missing == "zeros":
            extra = torch.zeros(
                1, self.embedding_dim, dtype=self._storage.dtype, device=self.device
            )
            inverse = torch.zeros_like(inverse)
        else:
            with self._random_state_kept():
                initial = self.init.initial_rows(self._view(count), unknown_ids, {})
            extra = ops.materialize(self.weight.detach(), initial)
        rows = rows.clone()
        rows[is_missing] = count + inverse

        if torch.is_grad_enabled() and self.weight.requires_grad:
            # Gradients must still reach `weight`, so pay for one concatenation.
            return rows, torch.cat([self.weight, extra.to(self.weight.dtype)])
        self._reserve_rows(count + extra.shape[0])
        self._storage[count : count + extra.shape[0]] = extra
        return rows, self._storage[: count + extra.shape[0]]

    @contextlib.contextmanager
    def _random_state_kept(self):
        """Run an eval-time initialisation without moving the random source on, so that
        evaluating a model does not change the rows that training later gives new IDs."""
        restore = self._random_state_restorer()
        try:
            yield
        finally:
            restore()

    def _random_state_restorer(self):
        """A function that puts the initialisers' random source back as it is now."""
        if self.generator is not None:
            generator, state = self.generator, self.generator.get_state()
            return lambda: generator.set_state(state)
        cpu_state = torch.get_rng_state()
        cuda_state = torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None

        def restore() -> None:
            torch.set_rng_state(cpu_state)
            if cuda_state is not None:
                torch.cuda.set_rng_state(cuda_state, self.device)

        return restore

    # ------------------------------------------------------------------ device and dtype

    def _apply(self, fn, recurse: bool = True):
        """`.to()`, `.double()`, `.cuda()`, ...: convert the rows and keep the storage in step.

        nn.Module replaces `weight` by a converted copy, which is no longer a view of the
        storage; the storage is rebuilt around it (with the same spare capacity) and the ID
        map follows a change of device.
        """
        result = super()._apply(fn, recurse)
        self._relink_storage()
        return result

    def __setstate__(self, state: dict) -> None:
        # Unpickling and deepcopy copy `weight` and the storage separately.
        super().__setstate__(state)
        mark_growable(self.weight)
        self._relink_storage()

    def _relink_storage(self) -> None:
        """Make `weight` a view of the storage again after something replaced its data."""
        weight = self.weight.data
        if weight.data_ptr() == self._storage.data_ptr() and weight.dtype == self._storage.dtype:
            return
        count = weight.shape[0]
        storage = _allocate_rows(
            max(self.capacity, count), self.embedding_dim, weight.dtype, weight.device
        )
        storage[:count] = weight
        self._storage = storage
        self.id_map = self.id_map.to(weight.device)
        if self.generator is not None and self.generator.device != weight.device:
            seed = int(torch.randint(0, 2**62, (1,), generator=self.generator))
            self.generator = torch.Generator(weight.device).manual_seed(seed)
        self.weight.data = storage[:count]

    # ------------------------------------------------------------------------- checkpoints

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        # Save only the rows in use: a view would drag the whole spare storage into the file.
        weight = self.weight if keep_vars else self.weight.detach().clone()
        destination[prefix + "weight"] = weight
        destination[prefix + "ids"] = self.id_map.ids()

    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, errors
    ):
        weight_key, ids_key = prefix + "weight", prefix + "ids"
        absent = [key for key in (weight_key, ids_key) if key not in state_dict]
        if absent:
            missing_keys.extend(absent)
            return
        weight, ids = state_dict[weight_key], state_dict[ids_key]
        if not isinstance(weight, torch.Tensor) or weight.dim() != 2:
            raise ValueError(f"{weight_key} must be a 2-D tensor of rows, got {type(weight)}")
        if weight.shape[1] != self.embedding_dim:
            raise ValueError(
                f"{weight_key} has rows of width {weight.shape[1]} but this module has "
                f"embedding_dim={self.embedding_dim}"
            )
        if not isinstance(ids, torch.Tensor) or ids.dim() != 1 or ids.numel() != weight.shape[0]:
            raise ValueError(
                f"{ids_key} must be a 1-D tensor with one ID per row of {weight_key} "
                f"({weight.shape[0]} rows), got {getattr(ids, 'shape', type(ids))}"
            )

        fresh_map = IdMap(
            self.device, self.id_map.backend, ids.numel(), max_ids=self.id_map.max_ids
        )
        fresh_map.load_state_dict({"ids": ids})
        storage = _allocate_rows(
            max(self.capacity, ids.numel()), self.embedding_dim, self._storage.dtype, self.device
        )
        storage[: ids.numel()] = weight.to(storage.dtype)

        self.id_map, self._storage = fresh_map, storage
        self._point_weight_at(storage[: ids.numel()])
        self.weight.grad = None


def _allocate_rows(count: int, dim: int, dtype: torch.dtype, device: torch.device):
    """Uninitialised (count, dim) storage, or a MemoryError that says what was asked for."""
    try:
        return torch.empty(count, dim, dtype=dtype, device=device)
    except (RuntimeError, MemoryError) as error:
        size = count * dim * torch.empty((), dtype=dtype).element_size()
        raise MemoryError(
            f"cannot allocate embedding storage of capacity {count} rows x {dim} "
            f"({size / 2**30:.1f} GiB of {dtype} on {device}); lower capacity or embedding_dim"
        ) from error


def _check_arguments(embedding_dim, init, capacity, missing, growth_factor, dtype) -> None:
    if not isinstance(embedding_dim, int) or embedding_dim <= 0:
        raise ValueError(f"embedding_dim must be a positive int, got {embedding_dim!r}")
    if init is not None and not isinstance(init, Initializer):
        raise TypeError(f"init must be an lfe.init.Initializer, got {type(init).__name__}")
    if not isinstance(capacity, int) or capacity < 0:
        raise ValueError(f"capacity must be a non-negative int, got {capacity!r}")
    if missing not in MISSING_MODES:
        raise ValueError(f"missing must be one of {MISSING_MODES}, got {missing!r}")
    if not growth_factor > 1.0:
        raise ValueError(f"growth_factor must be greater than 1, got {growth_factor!r}")
    if dtype is not None and not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating-point dtype, got {dtype}")


def _check_initial_rows(initial, count: int, dim: int) -> None:
    if isinstance(initial, torch.Tensor) and tuple(initial.shape) != (count, dim):
        raise ValueError(
            f"the initialiser returned rows of shape {tuple(initial.shape)}, expected "
            f"{(count, dim)}"
        )


def _resize_rows(sparse_rows: torch.Tensor, count: int) -> torch.Tensor:
    """A sparse (rows, dim) tensor with the same entries and `count` rows."""
    sparse_rows = sparse_rows.coalesce()
    return torch.sparse_coo_tensor(
        sparse_rows.indices(),
        sparse_rows.values(),
        (count, *sparse_rows.shape[1:]),
        check_invariants=False,  # growing keeps every index in range
    )
