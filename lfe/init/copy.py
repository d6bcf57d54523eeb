"""`Copy`: a successor product (new version, new size, relaunch) inherits a known row."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from lfe._ids import RESERVED_ID, as_ids
from lfe.init._recipes import (
    check_initializer,
    check_on_missing,
    combine,
    empty_rows,
    known_rows,
    require_given,
    run_fallback,
)
from lfe.init.base import Initializer, InitialRows, SegmentMean, TableView
from lfe.init.statistics import Mean


class Copy(Initializer):
    """The row of a new product is a copy of its predecessor's row.

    The predecessor of a new ID comes from `side_info[key]` (a 1-D integer tensor or list
    aligned with the IDs; `lfe.RESERVED_ID` or None for "no predecessor") when the call
    carries it, else from `source_of`. IDs whose predecessor is not given, or is not a
    known product with a row in use (including one added in the same call), go to
    `fallback` (default `Mean()`).

    Args:
        source_of: new ID -> predecessor ID, as a dict or a (new ids, predecessor ids) pair of
            1-D tensors.
        key: the side_info key of aligned predecessors (default "copy_from").
        fallback: initialiser for IDs without a known predecessor.
        on_missing: "fallback" (default), or "error" to raise KeyError for IDs whose
            predecessor is given neither in side_info nor in `source_of`.

    Example:
        >>> init = Copy({2001: 1001})  # product 2001 replaces product 1001
        >>> emb.extend(torch.tensor([3001]), copy_from=torch.tensor([1002]))
    """

    def __init__(
        self,
        source_of: Mapping[int, int] | tuple[torch.Tensor, torch.Tensor] | None = None,
        *,
        key: str = "copy_from",
        fallback: Initializer | None = None,
        on_missing: str = "fallback",
    ) -> None:
        self.key = key
        self.on_missing = check_on_missing(on_missing)
        self.fallback = Mean() if fallback is None else check_initializer(fallback, "fallback")
        successors, sources = _as_pairs(source_of)
        order = torch.argsort(successors)
        self.successors, self.sources = successors[order], sources[order]

    def initial_rows(
        self, table: TableView, ids: torch.Tensor, side_info: Mapping[str, Any]
    ) -> InitialRows:
        count = ids.numel()
        if count == 0:
            return empty_rows(table)
        sources = self._sources_of(ids, side_info)
        given = sources != RESERVED_ID
        if self.on_missing == "error":
            what = f"predecessor in side_info[{self.key!r}] nor in source_of"
            require_given("Copy", ids, given, what)

        rows = torch.full_like(ids, -1)
        rows[given] = known_rows(table, sources[given])
        resolved = torch.nonzero(rows >= 0).reshape(-1)
        remaining = torch.nonzero(rows < 0).reshape(-1)
        recipe = SegmentMean(torch.arange(resolved.numel() + 1, device=ids.device), rows[resolved])
        fallback_rows = run_fallback(self.fallback, table, ids, side_info, remaining)
        return combine(table, count, [(resolved, recipe), (remaining, fallback_rows)])

    def observe(self, ids: torch.Tensor, side_info: Mapping[str, Any]) -> None:
        self.fallback.observe(ids, side_info)

    def _sources_of(self, ids: torch.Tensor, side_info: Mapping[str, Any]) -> torch.Tensor:
        """Predecessor of each ID, RESERVED_ID where none is given."""
        self.successors = self.successors.to(ids.device)
        self.sources = self.sources.to(ids.device)
        sources = torch.full_like(ids, RESERVED_ID)
        if self.successors.numel():
            positions = torch.searchsorted(self.successors, ids)
            positions.clamp_(max=self.successors.numel() - 1)
            found = self.successors[positions] == ids
            sources[found] = self.sources[positions[found]]

        if self.key in side_info:
            side = _aligned_sources(side_info[self.key], ids.numel(), f"side_info[{self.key!r}]")
            side = side.to(ids.device)
            sources = torch.where(side != RESERVED_ID, side, sources)
        return sources

    def __repr__(self) -> str:
        pairs = self.successors.numel()
        return f"Copy(pairs={pairs}, key={self.key!r}, fallback={self.fallback!r})"


def _aligned_sources(data: Any, count: int, name: str) -> torch.Tensor:
    if isinstance(data, (list, tuple)):
        data = torch.tensor([RESERVED_ID if v is None else int(v) for v in data], dtype=torch.int64)
    data = torch.as_tensor(data)
    if data.dtype.is_floating_point or data.dtype.is_complex or data.dtype == torch.bool:
        raise TypeError(f"{name} must hold integer predecessor IDs, got dtype {data.dtype}")
    if data.dim() != 1 or data.shape[0] != count:
        raise ValueError(
            f"{name} must have shape ({count},), one predecessor per ID, got {tuple(data.shape)}"
        )
    return data.to(torch.int64)


def _as_pairs(source_of: Any) -> tuple[torch.Tensor, torch.Tensor]:
    if source_of is None:
        nothing = torch.empty(0, dtype=torch.int64)
        return nothing, nothing
    if isinstance(source_of, Mapping):
        successors = torch.tensor(list(source_of.keys()), dtype=torch.int64)
        sources = torch.tensor(list(source_of.values()), dtype=torch.int64)
    elif isinstance(source_of, tuple) and len(source_of) == 2:
        successors = torch.as_tensor(source_of[0])
        sources = torch.as_tensor(source_of[1])
    else:
        raise TypeError(
            "source_of must be a dict new ID -> predecessor ID or a (new ids, predecessor ids) "
            f"pair of tensors, got {type(source_of).__name__}"
        )
    successors = as_ids(successors, name="source_of new IDs").reshape(-1)
    sources = as_ids(sources, name="source_of predecessor IDs").reshape(-1)
    if successors.shape != sources.shape:
        raise ValueError(
            f"source_of pairs {successors.numel()} new IDs with {sources.numel()} predecessors"
        )
    if torch.unique(successors).numel() != successors.numel():
        raise ValueError("source_of gives a new ID more than one predecessor")
    return successors, sources
