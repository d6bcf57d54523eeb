"""`lfe.DynamicEmbedding`: an `nn.Embedding` addressed by raw IDs that grows with them."""

from __future__ import annotations

import torch

from lfe import ops
from lfe._ids import as_ids
from lfe.modules.table import DynamicTable


class DynamicEmbedding(DynamicTable):
    """An embedding table addressed by raw int64 IDs, appending rows for unseen IDs.

    In training mode, `forward` inserts unseen IDs: their rows are appended and initialised
    by `init` before they are used. In eval mode nothing is inserted and unseen IDs resolve
    as `missing` says. Rows that existed before an extension are never changed by it.

    Args:
        embedding_dim: width of each row.
        sparse: produce sparse gradients (for `torch.optim.SparseAdam`, `SGD`, `Adagrad`).
        **kwargs: see `lfe.modules.table.DynamicTable` (init, capacity, dtype, device,
            backend, missing, max_rows, growth_factor, generator).

    Example:
        >>> table = lfe.DynamicEmbedding(16, init=lfe.init.Mean())
        >>> vectors = table(torch.tensor([[1001, 1002], [1001, 99]]))  # shape (2, 2, 16)
    """

    def __init__(self, embedding_dim: int, *, sparse: bool = False, **kwargs) -> None:
        super().__init__(embedding_dim, **kwargs)
        self.sparse = sparse

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Rows of `ids` (int64 tensor of any shape): a tensor of shape ids.shape + (dim,)."""
        ids = as_ids(ids, device=self.device)
        rows, weight = self._resolve_rows(ids.reshape(-1))
        return ops.embedding(weight, rows.reshape(ids.shape), sparse=self.sparse)
