"""Initialisers that ignore what is known about a product: `Random` noise and `Zeros`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from lfe.init._moments import pooled_std
from lfe.init.base import Initializer, TableView

SCALE_SAMPLE_ROWS = 65536
"""At most this many rows (evenly spaced) are measured for `Random`'s scale."""

DEFAULT_FALLBACK_STD = 0.1
"""Scale of `Random` rows while the table has fewer than two rows to measure."""


def standard_normal(table: TableView, count: int) -> torch.Tensor:
    """(count, dim) N(0, 1) samples from `table.generator` on the table's device.

    float64 for float64 tables, else float32 (also for half-precision tables, so a seed gives
    the same values for all of them); float32 sampling is several times faster than float64,
    which matters when millions of rows are appended.
    """
    dtype = torch.float64 if table.weight.dtype == torch.float64 else torch.float32
    return torch.randn(
        count, table.dim, generator=table.generator, dtype=dtype, device=table.weight.device
    )


class Random(Initializer):
    """New rows drawn from N(0, std^2), scaled like the rows already in the table.

    Args:
        std: fixed standard deviation; None (default) measures it on every call as the
            pooled standard deviation of the rows in use (the spread of the rows around their
            mean row, averaged over dimensions; on an evenly spaced subset of at most
            65,536 rows), so new rows look like the trained ones.
        fallback_std: the standard deviation used while std is None and the table has fewer
            than two rows (nothing to measure), default 0.1. It is in effect the initial scale
            of a table that starts empty.

    Randomness comes from `table.generator`, so a seeded generator repeats exactly.
    """

    def __init__(self, std: float | None = None, fallback_std: float = DEFAULT_FALLBACK_STD):
        if std is not None and not std >= 0:
            raise ValueError(f"std must be None or a non-negative number, got {std!r}")
        if not fallback_std >= 0:
            raise ValueError(f"fallback_std must be a non-negative number, got {fallback_std!r}")
        self.std = None if std is None else float(std)
        self.fallback_std = float(fallback_std)

    def scale(self, table: TableView) -> float:
        """The standard deviation a call on `table` samples with."""
        if self.std is not None:
            return self.std
        if table.num_rows < 2:
            return self.fallback_std
        rows = table.weight
        if rows.shape[0] > SCALE_SAMPLE_ROWS:
            # An evenly spaced subset estimates the spread just as well and keeps each call
            # O(rows added), not O(table), so a stream of appends stays amortised O(k).
            rows = rows[:: -(-rows.shape[0] // SCALE_SAMPLE_ROWS)]
        return pooled_std(rows)

    def initial_rows(
        self, table: TableView, ids: torch.Tensor, side_info: Mapping[str, Any]
    ) -> torch.Tensor:
        std = self.scale(table)
        sample = standard_normal(table, ids.numel())
        return (sample * std).to(table.weight.dtype)

    def __repr__(self) -> str:
        return f"Random(std={self.std}, fallback_std={self.fallback_std})"


class Zeros(Initializer):
    """New rows are all zeros."""

    def initial_rows(
        self, table: TableView, ids: torch.Tensor, side_info: Mapping[str, Any]
    ) -> torch.Tensor:
        return torch.zeros(
            ids.numel(), table.dim, dtype=table.weight.dtype, device=table.weight.device
        )
