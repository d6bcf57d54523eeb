"""Initialisers from statistics of all rows in use: `Mean` and `MultivariateNormal`."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import torch

from lfe.init._moments import row_covariance, row_mean
from lfe.init._recipes import check_initializer
from lfe.init.base import Initializer, InitialRows, TableView
from lfe.init.random import Random, standard_normal

logger = logging.getLogger(__name__)


class Mean(Initializer):
    """Every new row starts at the mean of the rows in use, plus optional N(0, noise_std^2).

    Args:
        noise_std: standard deviation of the noise added to each new row (default 0: every
            new row of a call is the same vector).
        fallback: initialiser used while the table is empty and has no mean; default
            `Random()` (N(0, 0.1^2)), since all-zero first rows would leave a fresh model
            without a symmetry to break. Pass `Zeros()` for zeros.
    """

    def __init__(self, noise_std: float = 0.0, fallback: Initializer | None = None):
        if not noise_std >= 0:
            raise ValueError(f"noise_std must be a non-negative number, got {noise_std!r}")
        self.noise_std = float(noise_std)
        self.fallback = Random() if fallback is None else check_initializer(fallback, "fallback")

    def initial_rows(
        self, table: TableView, ids: torch.Tensor, side_info: Mapping[str, Any]
    ) -> InitialRows:
        if table.num_rows == 0:
            return self.fallback.initial_rows(table, ids, side_info)

        rows = row_mean(table.weight).expand(ids.numel(), table.dim)
        if self.noise_std > 0:
            rows = rows + self.noise_std * standard_normal(table, ids.numel())
        return rows.to(table.weight.dtype)

    def observe(self, ids: torch.Tensor, side_info: Mapping[str, Any]) -> None:
        self.fallback.observe(ids, side_info)

    def __repr__(self) -> str:
        return f"Mean(noise_std={self.noise_std}, fallback={self.fallback!r})"


class MultivariateNormal(Initializer):
    """New rows sampled from N(mean, covariance) of the rows in use.

    The covariance is the unbiased sample covariance, accumulated as centred X^T X over
    float64 chunks of rows (cost O(rows x dim^2), memory O(dim^2)), then factored as
    cholesky(cov + jitter * mean(diag(cov)) * I). The relative jitter makes a covariance of
    fewer rows than dimensions (singular, but with spread) usable.

    Falls back to `fallback` (default `Mean()`, which itself falls back to `Random()` on an
    empty table) when the table has fewer than two rows, or when the factorisation fails:
    rows without any spread (all identical, zero covariance) or non-finite values. The
    latter is logged as a warning.

    Args:
        jitter: relative diagonal loading before the Cholesky factorisation.
        fallback: initialiser used when the covariance is not usable.
    """

    def __init__(self, jitter: float = 1e-6, fallback: Initializer | None = None):
        if not jitter >= 0:
            raise ValueError(f"jitter must be a non-negative number, got {jitter!r}")
        self.jitter = float(jitter)
        self.fallback = Mean() if fallback is None else check_initializer(fallback, "fallback")

    def distribution(self, table: TableView) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(mean (dim,), Cholesky factor (dim, dim)) in float64, or None when not usable."""
        if table.num_rows < 2:
            return None
        mean, covariance = row_covariance(table.weight)
        scale = covariance.diagonal().mean()
        loaded = covariance + self.jitter * scale * torch.eye(
            table.dim, dtype=covariance.dtype, device=covariance.device
        )
        factor, info = torch.linalg.cholesky_ex(loaded)
        if int(info) != 0 or not bool(torch.isfinite(factor).all()):
            logger.warning(
                "MultivariateNormal: the covariance of the %d rows in use is not positive "
                "definite even with jitter %g (rows without spread, or non-finite values); "
                "using %r instead",
                table.num_rows,
                self.jitter,
                self.fallback,
            )
            return None
        return mean, factor

    def initial_rows(
        self, table: TableView, ids: torch.Tensor, side_info: Mapping[str, Any]
    ) -> InitialRows:
        distribution = self.distribution(table)
        if distribution is None:
            return self.fallback.initial_rows(table, ids, side_info)

        mean, factor = distribution
        sample = standard_normal(table, ids.numel()).to(torch.float64)
        return (mean + sample @ factor.T).to(table.weight.dtype)

    def observe(self, ids: torch.Tensor, side_info: Mapping[str, Any]) -> None:
        self.fallback.observe(ids, side_info)

    def __repr__(self) -> str:
        return f"MultivariateNormal(jitter={self.jitter}, fallback={self.fallback!r})"
