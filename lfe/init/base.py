"""The cold-start interface: how a new row gets its first value.

An initialiser receives the IDs being added, their side information and a read-only view
of the table, and returns the new rows either as a dense tensor or as a `SegmentMean`
recipe (each new row is a weighted mean of existing rows, plus optional noise). Recipes let
the table write many new rows in one batched operation straight into its spare capacity.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from lfe.id_map import IdMap


@dataclass(frozen=True)
class TableView:
    """What an initialiser may read: the rows in use and the map from IDs to them."""

    weight: torch.Tensor
    """(num_rows, dim) rows in use; read only."""
    id_map: IdMap
    """Known IDs to rows of `weight`."""
    generator: torch.Generator | None = None
    """Source of randomness, so that seeded runs repeat exactly."""

    @property
    def num_rows(self) -> int:
        return self.weight.shape[0]

    @property
    def dim(self) -> int:
        return self.weight.shape[1]


@dataclass(frozen=True)
class SegmentMean:
    """New row i = sum_j w_j * weight[indices[j]] / sum_j w_j over j in indptr[i]:indptr[i+1],
    plus `noise[i]`. A row with an empty segment is zero plus its noise.

    indptr: (k + 1,) int64, starts at 0 and never decreases.
    indices: (nnz,) int64 rows of the existing table.
    weights: (nnz,) floating weights, or None for a plain mean.
    noise: (k, dim) added to each row after the mean, or None.
    """

    indptr: torch.Tensor
    indices: torch.Tensor
    weights: torch.Tensor | None = None
    noise: torch.Tensor | None = None

    @property
    def num_new_rows(self) -> int:
        return self.indptr.numel() - 1


InitialRows = torch.Tensor | SegmentMean


class Initializer:
    """Base class of the cold-start strategies; subclass it to add your own.

    Subclasses implement `initial_rows`. Side information arrives as keyword arguments of
    `DynamicEmbedding.extend` (or of `missing="init"` lookups) and is passed through
    untouched; each initialiser documents the keys it reads.
    """

    def initial_rows(
        self, table: TableView, ids: torch.Tensor, side_info: Mapping[str, Any]
    ) -> InitialRows:
        """Rows for the 1-D int64 `ids` (all unseen, distinct): a (len(ids), dim) tensor in the
        table's dtype and device, or a `SegmentMean` over rows of `table.weight`."""
        raise NotImplementedError(f"{type(self).__name__} must implement initial_rows")

    def observe(self, ids: torch.Tensor, side_info: Mapping[str, Any]) -> None:
        """Remember side information of `ids` that later initialisations may use.

        Called after `ids` were added with side information. The default keeps nothing.
        """

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
