"""Ranking and classification metrics of the experiment."""

from __future__ import annotations

import math

import torch


def auc(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """Area under the ROC curve, ties counted as half (the Mann-Whitney statistic).

    NaN when `labels` holds only one class, since the AUC is undefined then.
    """
    labels = labels.to(torch.bool)
    positives = int(labels.sum())
    negatives = labels.numel() - positives
    if positives == 0 or negatives == 0:
        return math.nan
    ranks = _average_ranks(scores.to(torch.float64))
    rank_sum = float(ranks[labels].sum())
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def hit_rate_and_ndcg(candidate_scores: torch.Tensor, k: int = 10) -> tuple[float, float]:
    """HR@k and NDCG@k when column 0 of each row is the true item and the rest are negatives.

    A tie with a negative counts against the true item, so a model that scores everything
    alike gets no credit.
    """
    if candidate_scores.shape[0] == 0:
        return math.nan, math.nan
    true_scores = candidate_scores[:, :1]
    rank = (candidate_scores[:, 1:] >= true_scores).sum(dim=1).to(torch.float64)
    hits = rank < k
    ndcg = torch.where(hits, 1.0 / torch.log2(rank + 2.0), torch.zeros_like(rank))
    return float(hits.double().mean()), float(ndcg.mean())


def _average_ranks(values: torch.Tensor) -> torch.Tensor:
    """1-based ranks of `values`, tied values sharing the mean of their ranks."""
    sorted_values, order = torch.sort(values)
    _, inverse, counts = torch.unique_consecutive(
        sorted_values, return_inverse=True, return_counts=True
    )
    ends = torch.cumsum(counts, 0).to(torch.float64)
    mean_rank_per_group = ends - (counts.to(torch.float64) - 1) / 2
    ranks = torch.empty_like(values)
    ranks[order] = mean_rank_per_group[inverse]
    return ranks
