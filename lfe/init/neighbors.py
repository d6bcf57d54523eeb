"""`NeighborMean`: a new product starts at the mean of its nearest known products."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from lfe.init._recipes import (
    check_initializer,
    check_on_missing,
    combine,
    empty_rows,
    first_positions,
    known_rows,
    require_given,
    run_fallback,
)
from lfe.init.base import Initializer, InitialRows, SegmentMean, TableView
from lfe.init.side_info import FeatureTable
from lfe.init.statistics import Mean

METRICS = ("cosine", "euclidean")
WEIGHTINGS = ("uniform", "distance")
SCORE_ELEMENTS = 2**24
"""New x known similarity scores computed at a time (64 MiB of float32)."""
DISTANCE_EPS = 1e-6
"""Added to distances before inverting them, so an exact match gets a large finite weight."""


class NeighborMean(Initializer):
    """The row of a new product is the mean of the rows of its `k` nearest known products in
    a side-feature space (content vectors, multi-hot genre vectors, ...).

    Known products are those with a row in use and a feature vector in the catalogue (the
    `features` given here plus what `observe` recorded). A new ID's features come from
    `side_info[key]` when the call carries it, else from the catalogue; IDs with no
    features, or calls while no known product has features, go to `fallback`.

    Nearest is by cosine similarity of the features (default; a zero vector is equally far
    from everything) or by euclidean distance. The search is exact and brute force: a
    (new x known) score matrix in chunks of `SCORE_ELEMENTS` and a top-k, O(new x known x f)
    work. With fewer than `k` known products, all of them are used.

    Args:
        features: the catalogue: a `FeatureTable`, an (ids (n,), features (n, f)) tuple, a
            pandas DataFrame indexed by ID with one column per feature, or a dict ID -> vector.
        k: number of neighbours.
        key: the side_info key holding the (len(ids), f) features of new IDs.
        metric: "cosine" or "euclidean".
        weighting: "uniform" (plain mean, default) or "distance" (weights 1 / (d + 1e-6),
            d = 1 - cosine similarity or the euclidean distance).
        fallback: initialiser for IDs without neighbours (default `Mean()`).
        on_missing: "fallback" (default), or "error" to raise KeyError for IDs with no
            features in side_info nor in the catalogue.
    """

    def __init__(
        self,
        features: FeatureTable | tuple | pd.DataFrame | Mapping[int, Any] | None = None,
        k: int = 10,
        *,
        key: str = "features",
        metric: str = "cosine",
        weighting: str = "uniform",
        fallback: Initializer | None = None,
        on_missing: str = "fallback",
    ) -> None:
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
            raise ValueError(f"k must be a positive int, got {k!r}")
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
        if weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
        self.k = int(k)
        self.key = key
        self.metric = metric
        self.weighting = weighting
        self.on_missing = check_on_missing(on_missing)
        self.fallback = Mean() if fallback is None else check_initializer(fallback, "fallback")
        self.catalogue = _as_feature_table(features)

    def initial_rows(
        self, table: TableView, ids: torch.Tensor, side_info: Mapping[str, Any]
    ) -> InitialRows:
        count = ids.numel()
        if count == 0:
            return empty_rows(table)
        queries, given = self._query_features(ids, side_info)
        if self.on_missing == "error":
            what = f"features in side_info[{self.key!r}] nor in the catalogue"
            require_given("NeighborMean", ids, given, what)

        catalogue = self._catalogue_on(ids.device)
        item_rows = known_rows(table, catalogue.ids)
        known = torch.nonzero(item_rows >= 0).reshape(-1)
        resolved = given if known.numel() else torch.zeros_like(given)
        positions = torch.nonzero(resolved).reshape(-1)
        remaining = torch.nonzero(~resolved).reshape(-1)

        parts = [(remaining, run_fallback(self.fallback, table, ids, side_info, remaining))]
        if positions.numel():
            neighbours, distances = self._nearest(queries[positions], catalogue.features[known])
            parts.append((positions, self._recipe(item_rows[known][neighbours], distances)))
        return combine(table, count, parts)

    def observe(self, ids: torch.Tensor, side_info: Mapping[str, Any]) -> None:
        """Record the features in `side_info[key]` of `ids` in the catalogue (the first
        occurrence of an ID given more than once)."""
        catalogue = self.catalogue
        if self.key in side_info:
            features = self._parse(side_info[self.key], ids.numel())
            first = first_positions(ids.cpu())
            update = FeatureTable(ids.cpu()[first], features[first])
            catalogue = catalogue.update(update.to(catalogue.device))
        self.fallback.observe(ids, side_info)
        self.catalogue = catalogue

    def _catalogue_on(self, device: torch.device) -> FeatureTable:
        if self.catalogue.device != device:
            self.catalogue = self.catalogue.to(device)
        return self.catalogue

    def _parse(self, data: Any, count: int) -> torch.Tensor:
        name = f"side_info[{self.key!r}]"
        features = torch.as_tensor(data)
        if features.dtype.is_complex:
            raise TypeError(f"{name} must hold numeric features, got dtype {features.dtype}")
        width = self.catalogue.num_features if len(self.catalogue) else None
        if (
            features.dim() != 2
            or features.shape[0] != count
            or (width is not None and features.shape[1] != width)
        ):
            expected = f"({count}, {width})" if width is not None else f"({count}, f)"
            raise ValueError(
                f"{name} must have shape {expected}, one feature row per ID, "
                f"got {tuple(features.shape)}"
            )
        return features.to(torch.float32)

    def _query_features(self, ids: torch.Tensor, side_info: Mapping[str, Any]):
        """((len(ids), f) float32 features, given mask) of the new IDs."""
        if self.key in side_info:
            features = self._parse(side_info[self.key], ids.numel()).to(ids.device)
            return features, torch.ones(ids.numel(), dtype=torch.bool, device=ids.device)
        catalogue = self._catalogue_on(ids.device)
        positions, found = catalogue.lookup(ids)
        if not len(catalogue):
            return torch.zeros(ids.numel(), 0, device=ids.device), found
        return catalogue.features[positions], found

    def _nearest(self, queries: torch.Tensor, known: torch.Tensor):
        """(indices into known (m, k'), distances (m, k')) of each query's nearest rows."""
        take = min(self.k, known.shape[0])
        if self.metric == "cosine":
            queries, known = F.normalize(queries, dim=1), F.normalize(known, dim=1)
        else:
            known_squares = (known * known).sum(1)

        indices, distances = [], []
        chunk = max(1, SCORE_ELEMENTS // known.shape[0])
        for start in range(0, queries.shape[0], chunk):
            block = queries[start : start + chunk]
            scores = block @ known.T
            if self.metric == "euclidean":
                # Negative squared distance, up to the query's own constant |q|^2.
                scores = 2 * scores - known_squares
            top = torch.topk(scores, take, dim=1)
            if self.metric == "cosine":
                distance = (1 - top.values).clamp_(min=0)
            else:
                squares = (block * block).sum(1, keepdim=True) - top.values
                distance = squares.clamp_(min=0).sqrt_()
            indices.append(top.indices)
            distances.append(distance)
        return torch.cat(indices), torch.cat(distances)

    def _recipe(self, rows: torch.Tensor, distances: torch.Tensor) -> SegmentMean:
        count, take = rows.shape
        indptr = torch.arange(0, count * take + 1, take, device=rows.device)
        weights = None
        if self.weighting == "distance":
            weights = 1.0 / (distances.reshape(-1) + DISTANCE_EPS)
        return SegmentMean(indptr, rows.reshape(-1), weights)

    def __repr__(self) -> str:
        return (
            f"NeighborMean(k={self.k}, key={self.key!r}, metric={self.metric!r}, "
            f"weighting={self.weighting!r}, fallback={self.fallback!r})"
        )


def _as_feature_table(value: Any) -> FeatureTable:
    if value is None:
        return FeatureTable.empty()
    if isinstance(value, FeatureTable):
        return value
    if isinstance(value, pd.DataFrame):
        return FeatureTable.from_dataframe(value)
    if isinstance(value, Mapping):
        return FeatureTable.from_dict(value)
    if isinstance(value, tuple) and len(value) == 2:
        return FeatureTable(*value)
    raise TypeError(
        "features must be a FeatureTable, an (ids, features) tuple, a DataFrame indexed by ID "
        f"or a dict ID -> vector, got {type(value).__name__}"
    )
