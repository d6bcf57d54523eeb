"""Contract tests of lfe.DynamicEmbeddingBag against nn.EmbeddingBag over the same rows."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import lfe
from lfe.testing import assert_close

MODES = ["sum", "mean", "max"]


def filled_bag(generator, mode, num_ids=60, **kwargs):
    """A bag module that knows `num_ids` random IDs, and those IDs."""
    bag = lfe.DynamicEmbeddingBag(5, mode=mode, capacity=7, **kwargs)
    ids = torch.randperm(10**6, generator=generator)[:num_ids] - 500_000
    offsets = torch.tensor([0, num_ids] if bag.include_last_offset else [0])
    with torch.no_grad():
        bag(ids, offsets)
    return bag, ids


def reference_of(bag, mode):
    return nn.EmbeddingBag.from_pretrained(bag.weight.detach().clone(), freeze=False, mode=mode)


@pytest.mark.parametrize("mode", MODES)
def test_offsets_form_equals_nn_embedding_bag_with_gradients(generator, mode):
    bag, known = filled_bag(generator, mode)
    ids = known[torch.randint(0, known.numel(), (41,), generator=generator)]
    offsets = torch.tensor([0, 3, 3, 10, 25, 40])  # includes an empty bag
    upstream = torch.randn(6, 5, generator=generator)

    (bag(ids, offsets) * upstream).sum().backward()
    reference = reference_of(bag, mode)
    rows = bag.id_map.lookup(ids)
    (reference(rows, offsets) * upstream).sum().backward()

    assert_close(bag(ids, offsets), reference(rows, offsets), atol=1e-6)
    assert_close(bag.weight.grad, reference.weight.grad, atol=1e-6)
    assert bool((bag(ids, offsets)[1] == 0).all())  # the empty bag pools to zeros


@pytest.mark.parametrize("mode", MODES)
def test_two_dimensional_input_is_one_bag_per_row(generator, mode):
    bag, known = filled_bag(generator, mode)
    ids = known[torch.randint(0, known.numel(), (4, 6), generator=generator)]
    expected = reference_of(bag, mode)(bag.id_map.lookup(ids))
    assert_close(bag(ids), expected, atol=1e-6)


def test_padding_id_is_ignored_and_never_inserted(generator):
    bag = lfe.DynamicEmbeddingBag(3, mode="mean", padding_id=-1)
    out = bag(torch.tensor([[4, 5, -1], [-1, -1, -1], [6, -1, 6]]))
    assert bag.num_embeddings == 3 and not bool(bag.id_map.contains(torch.tensor([-1])))
    weight = bag.weight.detach()
    assert_close(out[0], (weight[0] + weight[1]) / 2, atol=1e-7)
    assert bool((out[1] == 0).all())
    assert_close(out[2], weight[2], atol=1e-7)


def test_per_sample_weights_and_include_last_offset(generator):
    bag, known = filled_bag(generator, "sum", include_last_offset=True)
    ids = known[:9]
    offsets = torch.tensor([0, 4, 9])
    weights = torch.rand(9, generator=generator)
    reference = nn.EmbeddingBag.from_pretrained(
        bag.weight.detach().clone(), mode="sum", include_last_offset=True
    )
    expected = reference(bag.id_map.lookup(ids), offsets, per_sample_weights=weights)
    assert_close(bag(ids, offsets, per_sample_weights=weights), expected, atol=1e-6)


def test_training_inserts_and_eval_resolves_missing(generator):
    bag = lfe.DynamicEmbeddingBag(4, mode="sum", missing="zeros")
    bag(torch.tensor([1, 2, 3]), torch.tensor([0, 2]))
    assert bag.num_embeddings == 3
    bag.eval()
    out = bag(torch.tensor([1, 99, 98]), torch.tensor([0, 1]))
    assert bag.num_embeddings == 3
    assert_close(out[0], bag.weight.detach()[0])
    assert bool((out[1] == 0).all())


def test_bad_bags_are_clear_errors():
    bag = lfe.DynamicEmbeddingBag(2, mode="mean")
    with pytest.raises(ValueError, match="offsets is required"):
        bag(torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="offsets must start at 0"):
        bag(torch.tensor([1, 2]), torch.tensor([1]))
    with pytest.raises(ValueError, match="offsets must be None"):
        bag(torch.tensor([[1, 2]]), torch.tensor([0]))
    with pytest.raises(ValueError, match="per_sample_weights needs mode='sum'"):
        bag(torch.tensor([1, 2]), torch.tensor([0]), per_sample_weights=torch.ones(2))
    with pytest.raises(ValueError, match="mode"):
        lfe.DynamicEmbeddingBag(2, mode="median")
    assert bag.num_embeddings == 0


def test_padding_id_cannot_be_extended_and_must_be_an_int():
    bag = lfe.DynamicEmbeddingBag(2, padding_id=-1)
    with pytest.raises(ValueError, match="padding_id"):
        bag.extend(torch.tensor([-1, 5]))
    assert bag.num_embeddings == 0
    with pytest.raises(TypeError, match="padding_id"):
        lfe.DynamicEmbeddingBag(2, padding_id=1.5)
