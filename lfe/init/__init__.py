"""Cold-start strategies: the first value of a row added for a new product.

`lfe.DynamicEmbedding(dim, init=...)` calls its initialiser whenever rows are appended:
for unseen IDs in a training forward (no side information), in `extend(ids, **side_info)`
(which afterwards lets the initialiser `observe` the side information), and for unseen IDs
of an eval lookup with `missing="init"`. Every strategy also works on its own, on a
`TableView` of any weight tensor and `lfe.IdMap`.

Strategies:

- `Random`: N(0, std^2) noise, std measured on the rows in use (0.1 on a near-empty table).
- `Zeros`: zeros.
- `Mean`: the mean of the rows in use (`Random` while the table is empty).
- `MultivariateNormal`: samples from the mean and covariance of the rows in use.
- `AttributeMean`: the mean of known products sharing a category, brand, genre, ... with a
  fallback chain over attributes; multi-valued attributes supported.
- `NeighborMean`: the mean of the k nearest known products in a side-feature space.
- `Copy`: a successor product inherits its predecessor's row.

Mean-type strategies return `SegmentMean` recipes (or rows computed by batched segment
means), never a Python loop over IDs.

Your own strategy is a subclass of `Initializer`. For example, new rows at the mean of
the most recently added rows:

    >>> import torch
    >>> from lfe.init import Initializer, SegmentMean
    >>> class RecentMean(Initializer):
    ...     def __init__(self, window: int = 1000):
    ...         self.window = window
    ...     def initial_rows(self, table, ids, side_info):
    ...         device = table.weight.device
    ...         first = max(0, table.num_rows - self.window)
    ...         recent = torch.arange(first, table.num_rows, device=device)
    ...         # Every new ID's segment is the same recent rows (none: zeros).
    ...         indptr = torch.arange(ids.numel() + 1, device=device) * recent.numel()
    ...         return SegmentMean(indptr, recent.repeat(ids.numel()))
    >>> emb = lfe.DynamicEmbedding(32, init=RecentMean(window=500))  # doctest: +SKIP

(Mind the size of a recipe: its `indices` hold one entry per (new row, source row) pair;
for a mean over many rows shared by many new IDs, compute the mean once and return dense
rows instead, as `Mean` does.)
"""

from lfe.init.attributes import AttributeMean
from lfe.init.base import Initializer, InitialRows, SegmentMean, TableView
from lfe.init.copy import Copy
from lfe.init.neighbors import NeighborMean
from lfe.init.random import Random, Zeros
from lfe.init.side_info import AttributeTable, FeatureTable, Vocabulary
from lfe.init.statistics import Mean, MultivariateNormal

__all__ = [
    "AttributeMean",
    "AttributeTable",
    "Copy",
    "FeatureTable",
    "InitialRows",
    "Initializer",
    "Mean",
    "MultivariateNormal",
    "NeighborMean",
    "Random",
    "SegmentMean",
    "TableView",
    "Vocabulary",
    "Zeros",
]
