"""Plain-PyTorch references of the kernels, written for clarity, not speed.

Tests compare each kernel against these. They compute in float64 and cast to the input's
dtype at the end, so they are the most accurate answer the storage dtype can hold.
"""

from __future__ import annotations

import torch


def gather_reference(weight: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """`weight[rows]`, (n, dim)."""
    return weight[rows]


def bag_of_entries(indptr: torch.Tensor) -> torch.Tensor:
    """(nnz,) int64 bag (segment) of each entry of a CSR `indptr`."""
    counts = indptr[1:] - indptr[:-1]
    return torch.repeat_interleave(torch.arange(counts.numel(), device=indptr.device), counts)


def pooled_gather_reference(
    weight: torch.Tensor,
    rows: torch.Tensor,
    indptr: torch.Tensor,
    mode: str,
    per_sample_weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per-bag sum, mean or max of weight[rows]; for max also the argmax positions (-1 empty).

    Ties in max go to the first position in the bag, as the kernel does.
    """
    num_bags, dim = indptr.numel() - 1, weight.shape[1]
    values = weight[rows].to(torch.float64)
    if per_sample_weights is not None:
        values = values * per_sample_weights.to(torch.float64)[:, None]
    out = torch.zeros(num_bags, dim, dtype=torch.float64, device=weight.device)
    argmax = torch.full((num_bags, dim), -1, dtype=torch.int64, device=weight.device)
    for bag in range(num_bags):
        start, end = int(indptr[bag]), int(indptr[bag + 1])
        if start == end:
            continue
        segment = values[start:end]
        if mode == "sum":
            out[bag] = segment.sum(0)
        elif mode == "mean":
            out[bag] = segment.mean(0)
        else:
            # torch.max may return any of equal maxima; the first one is wanted.
            best = segment.max(0).values
            first = (segment == best).to(torch.int64).argmax(0)
            out[bag], argmax[bag] = best, start + first
    return out.to(weight.dtype), argmax if mode == "max" else None


def scatter_add_reference(
    grad: torch.Tensor,
    rows: torch.Tensor,
    *,
    source: torch.Tensor | None = None,
    scale: torch.Tensor | None = None,
    argmax: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(unique_rows, grad_rows) as `lfe.kernels.scatter_add` defines them, via index_add_."""
    positions = torch.arange(rows.numel(), device=rows.device)
    source = positions if source is None else source
    contributions = grad.to(torch.float64)[source]
    if scale is not None:
        contributions = contributions * scale.to(torch.float64)[:, None]
    if argmax is not None:
        contributions = torch.where(argmax[source] == positions[:, None], contributions, 0.0)
    unique_rows, inverse = torch.unique(rows, sorted=True, return_inverse=True)
    sums = torch.zeros(unique_rows.numel(), grad.shape[1], dtype=torch.float64, device=grad.device)
    sums.index_add_(0, inverse, contributions)
    return unique_rows, sums.to(grad.dtype)


def segment_mean_reference(
    weight: torch.Tensor,
    indptr: torch.Tensor,
    indices: torch.Tensor,
    weights: torch.Tensor | None = None,
    noise: torch.Tensor | None = None,
) -> torch.Tensor:
    """Weighted mean per CSR segment of weight rows, plus noise; empty segments give noise.

    Weights summing to zero divide by one instead (as `lfe.ops.segment_mean` does), so such
    a segment gives its weighted sum.
    """
    num_new_rows, dim = indptr.numel() - 1, weight.shape[1]
    out = torch.zeros(num_new_rows, dim, dtype=torch.float64, device=weight.device)
    for new_row in range(num_new_rows):
        start, end = int(indptr[new_row]), int(indptr[new_row + 1])
        segment = weight[indices[start:end]].to(torch.float64)
        if weights is None:
            entry_weights = torch.ones(end - start, dtype=torch.float64, device=weight.device)
        else:
            entry_weights = weights[start:end].to(torch.float64)
        total_weight = entry_weights.sum()
        divisor = total_weight if total_weight != 0 else 1.0
        out[new_row] = (segment * entry_weights[:, None]).sum(0) / divisor
    if noise is not None:
        out += noise.to(torch.float64)
    return out.to(weight.dtype)
