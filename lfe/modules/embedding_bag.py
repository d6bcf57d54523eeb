"""`lfe.DynamicEmbeddingBag`: pooled lookups (sum, mean, max) over a growing table."""

from __future__ import annotations

import torch

from lfe import ops
from lfe._ids import as_ids
from lfe.modules.table import DynamicTable

POOLING_MODES = ("sum", "mean", "max")


class DynamicEmbeddingBag(DynamicTable):
    """Like `nn.EmbeddingBag`, addressed by raw int64 IDs, appending rows for unseen IDs.

    Bags are given either as 1-D `ids` with `offsets` (start of each bag) or as 2-D `ids`
    (one bag per row, all of equal length). Entries equal to `padding_id` are ignored, so
    ragged bags can be padded. Empty bags pool to zeros.

    Args:
        embedding_dim: width of each row.
        mode: "sum", "mean" or "max".
        padding_id: an ID that marks padding (never inserted, never pooled), or None.
        include_last_offset: as in `nn.EmbeddingBag`: `offsets` has one extra final entry.
        sparse: produce sparse gradients.
        **kwargs: see `lfe.modules.table.DynamicTable`.
    """

    def __init__(
        self,
        embedding_dim: int,
        *,
        mode: str = "mean",
        padding_id: int | None = None,
        include_last_offset: bool = False,
        sparse: bool = False,
        **kwargs,
    ) -> None:
        if mode not in POOLING_MODES:
            raise ValueError(f"mode must be one of {POOLING_MODES}, got {mode!r}")
        if padding_id is not None and (
            not isinstance(padding_id, int) or isinstance(padding_id, bool)
        ):
            raise TypeError(f"padding_id must be an int or None, got {type(padding_id).__name__}")
        super().__init__(embedding_dim, **kwargs)
        self.mode = mode
        self.padding_id = padding_id
        self.include_last_offset = include_last_offset
        self.sparse = sparse

    def extend(self, ids: torch.Tensor, **side_info) -> torch.Tensor:
        """As `DynamicTable.extend`; the padding ID is never a catalogue entry."""
        if self.padding_id is not None and isinstance(ids, torch.Tensor):
            if bool((ids == self.padding_id).any()):
                raise ValueError(
                    f"ids contains the padding_id {self.padding_id}, which marks padding and "
                    "is never given a row"
                )
        return super().extend(ids, **side_info)

    def forward(
        self,
        ids: torch.Tensor,
        offsets: torch.Tensor | None = None,
        per_sample_weights: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Pooled rows, shape (number of bags, embedding_dim)."""
        ids = as_ids(ids, device=self.device)
        flat_ids, offsets = self._flatten_bags(ids, offsets)
        if per_sample_weights is not None:
            per_sample_weights = self._check_per_sample_weights(per_sample_weights, ids)
        if self.padding_id is not None:
            flat_ids, offsets, per_sample_weights = ops.drop_bag_entries(
                flat_ids != self.padding_id, flat_ids, offsets, per_sample_weights
            )

        rows, weight = self._resolve_rows(flat_ids)
        return ops.embedding_bag(
            weight, rows, offsets, self.mode, per_sample_weights, sparse=self.sparse
        )

    def _flatten_bags(self, ids: torch.Tensor, offsets: torch.Tensor | None):
        if ids.dim() == 2:
            if offsets is not None:
                raise ValueError("offsets must be None when ids is 2-D (one bag per row)")
            starts = torch.arange(ids.shape[0], device=self.device) * ids.shape[1]
            return ids.reshape(-1), starts
        if ids.dim() != 1:
            raise ValueError(f"ids must be 1-D (with offsets) or 2-D, got shape {tuple(ids.shape)}")
        if offsets is None:
            raise ValueError("offsets is required when ids is 1-D")
        offsets = as_ids(offsets, name="offsets", device=self.device)
        if offsets.dim() != 1:
            raise ValueError(f"offsets must be 1-D, got shape {tuple(offsets.shape)}")
        if self.include_last_offset:
            if offsets.numel() == 0 or int(offsets[-1]) != ids.numel():
                raise ValueError(
                    f"with include_last_offset=True, offsets must end with len(ids) ({ids.numel()})"
                )
            offsets = offsets[:-1]
        if offsets.numel() and (
            int(offsets[0]) != 0
            or bool((offsets[1:] < offsets[:-1]).any())
            or int(offsets[-1]) > ids.numel()
        ):
            raise ValueError(
                f"offsets must start at 0, never decrease and stay within len(ids) ({ids.numel()})"
            )
        return ids, offsets

    def _check_per_sample_weights(self, per_sample_weights, ids) -> torch.Tensor:
        if self.mode != "sum":
            raise ValueError(f"per_sample_weights needs mode='sum', this module has {self.mode!r}")
        if per_sample_weights.shape != ids.shape:
            raise ValueError(
                f"per_sample_weights must have the shape of ids {tuple(ids.shape)}, got "
                f"{tuple(per_sample_weights.shape)}"
            )
        if per_sample_weights.device != self.device:
            raise ValueError(
                f"per_sample_weights is on {per_sample_weights.device}, expected {self.device}"
            )
        return per_sample_weights.reshape(-1).to(self._storage.dtype)
