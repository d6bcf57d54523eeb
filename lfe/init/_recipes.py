"""Helpers shared by the initialisers: CSR slicing, fallbacks and merging partial results.

Strategies with a fallback (`AttributeMean`, `NeighborMean`, `Copy`) resolve some of the new
IDs themselves and hand the rest to another initialiser. `combine` stitches the partial
results back into one value for all IDs, as a single `SegmentMean` recipe whenever any part
is one, so the table still writes every new row in one batched operation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from lfe.init.base import Initializer, InitialRows, SegmentMean, TableView

ON_MISSING = ("fallback", "error")


def check_on_missing(on_missing: str) -> str:
    if on_missing not in ON_MISSING:
        raise ValueError(f"on_missing must be one of {ON_MISSING}, got {on_missing!r}")
    return on_missing


def check_initializer(value: Any, name: str) -> Initializer:
    if not isinstance(value, Initializer):
        raise TypeError(f"{name} must be an lfe.init.Initializer, got {type(value).__name__}")
    return value


def empty_rows(table: TableView, count: int = 0) -> torch.Tensor:
    return torch.zeros(count, table.dim, dtype=table.weight.dtype, device=table.weight.device)


def csr_select(
    indptr: torch.Tensor, values: torch.Tensor, positions: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The CSR rows `positions` of (indptr, values), as a new (indptr, values) pair."""
    starts = indptr[positions]
    counts = indptr[positions + 1] - starts
    new_indptr = torch.zeros(positions.numel() + 1, dtype=torch.int64, device=indptr.device)
    torch.cumsum(counts, 0, out=new_indptr[1:])

    # Entry j of new row i sits at new_indptr[i] + t and comes from starts[i] + t.
    shift = torch.repeat_interleave(starts - new_indptr[:-1], counts)
    source = shift + torch.arange(shift.numel(), dtype=torch.int64, device=indptr.device)
    return new_indptr, values[source]


def known_rows(table: TableView, ids: torch.Tensor) -> torch.Tensor:
    """Rows of `ids` in the table, -1 where an ID is unknown or not yet a row in use.

    IDs the map already holds but whose rows are at or past `table.num_rows` are being added
    by the current call, so they do not count as known products.
    """
    if ids.numel() == 0:
        return torch.empty(0, dtype=torch.int64, device=ids.device)
    rows = table.id_map.lookup(ids.to(table.id_map.device)).to(ids.device)
    return torch.where(rows < table.num_rows, rows, -1)


def first_positions(ids: torch.Tensor) -> torch.Tensor:
    """Ascending positions of the first occurrence of each distinct value of 1-D `ids`."""
    if ids.numel() == 0:
        return torch.empty(0, dtype=torch.int64, device=ids.device)
    unique, inverse = torch.unique(ids, return_inverse=True)
    positions = torch.arange(ids.numel(), device=ids.device)
    first = torch.full((unique.numel(),), ids.numel(), dtype=torch.int64, device=ids.device)
    first.scatter_reduce_(0, inverse, positions, reduce="amin")
    return torch.sort(first).values


def subset_side_info(
    side_info: Mapping[str, Any], positions: torch.Tensor, count: int
) -> dict[str, Any]:
    """Side information of the IDs at `positions`: every value aligned with the `count` IDs
    (a tensor, array, list, tuple or pandas object of that length) is sliced; others pass."""
    picked = positions.cpu()
    subset = {}
    for key, value in side_info.items():
        subset[key] = _slice_aligned(value, picked, count)
    return subset


def _slice_aligned(value: Any, positions: torch.Tensor, count: int) -> Any:
    if isinstance(value, torch.Tensor):
        if value.dim() >= 1 and value.shape[0] == count:
            return value[positions.to(value.device)]
        return value
    if hasattr(value, "iloc") and len(value) == count:
        return value.iloc[positions.numpy()]
    if hasattr(value, "shape") and hasattr(value, "__getitem__") and len(value.shape) >= 1:
        return value[positions.numpy()] if value.shape[0] == count else value
    if isinstance(value, (list, tuple)) and len(value) == count:
        return [value[i] for i in positions.tolist()]
    return value


def run_fallback(
    fallback: Initializer,
    table: TableView,
    ids: torch.Tensor,
    side_info: Mapping[str, Any],
    positions: torch.Tensor,
) -> InitialRows:
    """`fallback.initial_rows` for the IDs at `positions`, with their side information."""
    subset = subset_side_info(side_info, positions, ids.numel())
    return fallback.initial_rows(table, ids[positions], subset)


def combine(
    table: TableView, count: int, parts: Sequence[tuple[torch.Tensor, InitialRows]]
) -> InitialRows:
    """Merge partial results into the rows of all `count` new IDs.

    `parts` holds (positions, rows) pairs whose positions together cover 0..count-1 once.
    All dense parts give a dense tensor; otherwise one `SegmentMean`, in which dense parts
    become noise over an empty segment (zero plus noise is the dense value).
    """
    parts = [(positions, part) for positions, part in parts if positions.numel() > 0]
    device, dtype = table.weight.device, table.weight.dtype
    if not any(isinstance(part, SegmentMean) for _, part in parts):
        rows = empty_rows(table, count)
        for positions, part in parts:
            rows[positions] = part.to(dtype)
        return rows

    recipes = [(positions, part) for positions, part in parts if isinstance(part, SegmentMean)]
    counts = torch.zeros(count, dtype=torch.int64, device=device)
    for positions, recipe in recipes:
        counts[positions] = recipe.indptr[1:] - recipe.indptr[:-1]
    indptr = torch.zeros(count + 1, dtype=torch.int64, device=device)
    torch.cumsum(counts, 0, out=indptr[1:])

    nnz = int(indptr[-1])
    indices = torch.empty(nnz, dtype=torch.int64, device=device)
    any_weights = any(recipe.weights is not None for _, recipe in recipes)
    weights = torch.ones(nnz, dtype=torch.float32, device=device) if any_weights else None
    for positions, recipe in recipes:
        part_counts = recipe.indptr[1:] - recipe.indptr[:-1]
        shift = torch.repeat_interleave(indptr[positions] - recipe.indptr[:-1], part_counts)
        target = shift + torch.arange(shift.numel(), dtype=torch.int64, device=device)
        indices[target] = recipe.indices
        if recipe.weights is not None:
            weights[target] = recipe.weights.to(torch.float32)

    noise = None
    if any(not isinstance(part, SegmentMean) or part.noise is not None for _, part in parts):
        noise = empty_rows(table, count)
        for positions, part in parts:
            value = part if not isinstance(part, SegmentMean) else part.noise
            if value is not None:
                noise[positions] = value.to(dtype)
    return SegmentMean(indptr, indices, weights, noise)


def require_given(strategy: str, ids: torch.Tensor, given: torch.Tensor, what: str) -> None:
    """For on_missing="error": a KeyError when some of the new `ids` lack side information."""
    if bool(given.all()):
        return
    missing = ids[~given]
    raise KeyError(
        f"{strategy}(on_missing='error'): {missing.numel()} of {ids.numel()} new IDs (e.g. ID "
        f"{int(missing[0])}) have no {what}"
    )
