"""The recommender the experiment trains: a target item against the user's recent items."""

from __future__ import annotations

import torch
from torch import nn

from lfe.init.base import Initializer
from lfe.modules import DynamicEmbedding, DynamicEmbeddingBag


class HistoryScorer(nn.Module):
    """Scores (user history, item) pairs from the items' embeddings alone, no user table.

    The user is represented by their recent items: a taste vector, the pooled rows of the
    items they liked minus those they disliked (a `DynamicEmbeddingBag` in sum mode with
    signed per-sample weights), and how often they liked things (a smoothed rate, through a
    learned weight). score = <taste, item vector> + item bias + w * logit(rate) + b.

    The item table has one extra column, the item's bias, so a cold-start strategy sets a
    new item's popularity prior together with its vector. The history table is a separate
    table of the same items (their role as context differs from their role as target). Both
    tables grow with the catalogue, use the same initialiser and have sparse gradients.

    `freeze_vocabulary` freezes the catalogue at the items the item table knows: other IDs
    are replaced by `unknown_id` before lookup, which is how a static table shares one row
    among all new products.
    """

    def __init__(
        self,
        dim: int,
        init: Initializer,
        padding_id: int,
        *,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.dim = dim
        self.padding_id = padding_id
        self.items = DynamicEmbedding(
            dim + 1, init=init, capacity=4096, generator=generator, sparse=True
        )
        self.history = DynamicEmbeddingBag(
            dim,
            init=init,
            mode="sum",
            padding_id=padding_id,
            capacity=4096,
            generator=generator,
            sparse=True,
        )
        self.global_bias = nn.Parameter(torch.zeros(()))
        self.rate_weight = nn.Parameter(torch.ones(()))
        self.unknown_id: int | None = None

    def freeze_vocabulary(self, unknown_id: int) -> None:
        """From now on, map every item the item table does not know to one shared row."""
        self.items.extend(torch.tensor([unknown_id]))
        self.history.extend(torch.tensor([unknown_id]))
        self.unknown_id = unknown_id

    def forward(
        self, histories: torch.Tensor, history_labels: torch.Tensor, items: torch.Tensor
    ) -> torch.Tensor:
        """Logits (B,) for histories (B, H), their labels (B, H) and target items (B,)."""
        taste, rate_logit = self._user(histories, history_labels)
        item = self.items(self._map(items))
        return (taste * item[:, : self.dim]).sum(-1) + item[:, self.dim] + rate_logit

    def score_candidates(
        self, histories: torch.Tensor, history_labels: torch.Tensor, candidates: torch.Tensor
    ) -> torch.Tensor:
        """Logits (B, C) of C candidate items for each of B histories."""
        taste, rate_logit = self._user(histories, history_labels)
        item = self.items(self._map(candidates))
        scores = torch.einsum("bd,bcd->bc", taste, item[..., : self.dim]) + item[..., self.dim]
        return scores + rate_logit[:, None]

    def dense_parameters(self) -> list[nn.Parameter]:
        """Parameters with dense gradients (the tables' gradients are sparse)."""
        return [self.global_bias, self.rate_weight]

    def _user(self, histories: torch.Tensor, history_labels: torch.Tensor):
        valid = histories != self.padding_id
        count = valid.sum(1, keepdim=True)
        signs = torch.where(valid, 2 * history_labels - 1, torch.zeros_like(history_labels))
        taste = self.history(self._map(histories), per_sample_weights=signs / count.clamp(min=1))
        liked = (history_labels * valid).sum(1)
        rate = (liked + 1) / (count.squeeze(1) + 2)  # Laplace smoothing: 0.5 with no history
        return taste, self.rate_weight * torch.logit(rate) + self.global_bias

    def _map(self, ids: torch.Tensor) -> torch.Tensor:
        if self.unknown_id is None:
            return ids
        known = self.items.id_map.contains(ids) | (ids == self.padding_id)
        return torch.where(known, ids, torch.full_like(ids, self.unknown_id))
