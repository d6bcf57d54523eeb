"""Mean, spread and covariance of the rows in use, in float64 over chunks of rows.

Every statistic costs O(rows x dim) (the covariance O(rows x dim^2)) and never more than one
chunk of float64 rows of extra memory, so it stays cheap on tables of millions of rows.
"""

from __future__ import annotations

import torch

CHUNK_ROWS = 65536
"""Rows converted to float64 at a time."""


def _chunks(weight: torch.Tensor):
    for start in range(0, weight.shape[0], CHUNK_ROWS):
        yield weight[start : start + CHUNK_ROWS].detach().to(torch.float64)


def row_mean(weight: torch.Tensor) -> torch.Tensor:
    """(dim,) float64 mean of the rows of the 2-D `weight`; needs at least one row."""
    total = torch.zeros(weight.shape[1], dtype=torch.float64, device=weight.device)
    for chunk in _chunks(weight):
        total += chunk.sum(0)
    return total / weight.shape[0]


def pooled_std(weight: torch.Tensor) -> float:
    """sqrt of the per-dimension (unbiased) variances averaged over dimensions.

    This is the typical distance of an entry from its dimension's mean: the spread of the
    rows around their mean row, unaffected by offsets between dimensions. Needs >= 2 rows.
    """
    mean = row_mean(weight)
    squares = torch.zeros((), dtype=torch.float64, device=weight.device)
    for chunk in _chunks(weight):
        squares += (chunk - mean).square_().sum()
    return float(torch.sqrt(squares / ((weight.shape[0] - 1) * weight.shape[1])))


def row_covariance(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean (dim,), unbiased covariance (dim, dim)), float64; needs at least two rows.

    Two passes (mean, then centred X^T X per chunk) rather than sum of squares minus the
    squared mean, which cancels badly when rows share a large offset.
    """
    mean = row_mean(weight)
    dim = weight.shape[1]
    scatter = torch.zeros(dim, dim, dtype=torch.float64, device=weight.device)
    for chunk in _chunks(weight):
        centred = chunk - mean
        scatter += centred.T @ centred
    return mean, scatter / (weight.shape[0] - 1)
