"""Contract tests of lfe.DynamicEmbedding (DESIGN.md, "lfe.DynamicEmbedding")."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import lfe
from lfe.init.base import Initializer
from lfe.testing import assert_close


class IdValued(Initializer):
    """Deterministic rows that depend only on the ID, so runs can be compared exactly."""

    def initial_rows(self, table, ids, side_info):
        seeds = (ids.to(torch.float64) * 0.6180339887) % 1.0
        columns = torch.arange(1, table.dim + 1, dtype=torch.float64, device=ids.device)
        return torch.sin(seeds[:, None] * columns * 7.0).to(table.weight.dtype)


class Failing(Initializer):
    def initial_rows(self, table, ids, side_info):
        raise RuntimeError("initialiser failed on purpose")


def random_ids(generator, count, high=10_000):
    return torch.randint(-high, high, (count,), generator=generator)


def test_forward_equals_nn_embedding_over_the_same_rows(generator):
    table = lfe.DynamicEmbedding(7, init=IdValued(), capacity=4)
    ids = random_ids(generator, 300).reshape(20, 15)

    out = table(ids)

    reference = nn.Embedding.from_pretrained(table.weight.detach().clone())
    assert out.shape == (20, 15, 7)
    assert_close(out, reference(table.id_map.lookup(ids)))
    assert table.num_embeddings == torch.unique(ids).numel() == table.weight.shape[0]


@pytest.mark.parametrize("sparse", [False, True])
def test_gradients_reach_only_used_rows_and_equal_nn_embedding(generator, sparse):
    table = lfe.DynamicEmbedding(5, init=IdValued(), sparse=sparse)
    with torch.no_grad():
        table(random_ids(generator, 200))
    ids = table.id_map.ids()[torch.randint(0, table.num_embeddings, (64,), generator=generator)]
    upstream = torch.randn(64, 5, generator=generator)

    (table(ids) * upstream).sum().backward()

    reference = nn.Embedding.from_pretrained(
        table.weight.detach().clone(), freeze=False, sparse=sparse
    )
    rows = table.id_map.lookup(ids)
    (reference(rows) * upstream).sum().backward()
    grad, expected = table.weight.grad, reference.weight.grad
    if sparse:
        assert grad.is_sparse
        grad, expected = grad.to_dense(), expected.to_dense()
    assert_close(grad, expected)
    unused = torch.ones(table.num_embeddings, dtype=torch.bool)
    unused[rows] = False
    assert bool(unused.any()) and bool((grad[unused] == 0).all())


def test_fifty_extensions_leave_old_rows_bit_identical(generator):
    table = lfe.DynamicEmbedding(9, init=lfe.init.Random(), capacity=1)
    snapshots = []
    for _ in range(50):
        snapshots.append(table.weight.detach().clone())
        table.extend(random_ids(generator, int(torch.randint(1, 200, (1,), generator=generator))))
    for snapshot in snapshots:
        assert torch.equal(table.weight.detach()[: snapshot.shape[0]], snapshot)
    assert table.capacity >= table.num_embeddings


def test_state_dict_round_trip_into_another_capacity(generator):
    table = lfe.DynamicEmbedding(6, capacity=8)
    ids = random_ids(generator, 500)
    table(ids)
    state = table.state_dict()
    assert set(state) == {"weight", "ids"}
    assert state["weight"].shape == (table.num_embeddings, 6)
    assert state["weight"].untyped_storage().nbytes() == state["weight"].numel() * 4

    for capacity in (1, 100_000):
        restored = lfe.DynamicEmbedding(6, capacity=capacity)
        restored.load_state_dict(state)
        restored.eval(), table.eval()
        assert torch.equal(restored(ids), table(ids))
        assert torch.equal(restored.id_map.ids(), table.id_map.ids())
        table.train()


@pytest.mark.parametrize("optimizer_name", ["Adam", "SGD", "Adagrad", "RMSprop"])
def test_training_across_growth_matches_a_table_that_never_grew(generator, optimizer_name):
    batches = [random_ids(generator, 32, high=400) for _ in range(30)]
    targets = [torch.randn(32, 4, generator=generator) for _ in range(30)]
    options = {
        "SGD": {"lr": 0.1, "momentum": 0.9},
        "Adagrad": {"lr": 0.1, "initial_accumulator_value": 0.5},
    }.get(optimizer_name, {"lr": 0.05})

    def train(capacity):
        table = lfe.DynamicEmbedding(4, init=IdValued(), capacity=capacity)
        table(batches[0])  # parameters exist before the optimiser is built
        optimizer = getattr(torch.optim, optimizer_name)(table.parameters(), **options)
        for ids, target in zip(batches, targets, strict=True):
            optimizer.zero_grad()
            ((table(ids) - target) ** 2).sum().backward()
            optimizer.step()
        return table

    grown, roomy = train(capacity=2), train(capacity=10_000)
    assert grown.capacity < roomy.capacity
    assert torch.equal(grown.id_map.ids(), roomy.id_map.ids())
    assert_close(grown.weight, roomy.weight, atol=1e-6, rtol=1e-6)


def test_sparse_gradients_train_with_sparse_adam(generator):
    table = lfe.DynamicEmbedding(4, sparse=True, capacity=2)
    table(random_ids(generator, 10))
    optimizer = torch.optim.SparseAdam(list(table.parameters()), lr=0.1)
    for _ in range(10):
        optimizer.zero_grad()
        table(random_ids(generator, 16, high=100)).pow(2).sum().backward()
        optimizer.step()
    assert optimizer.state[table.weight]["exp_avg"].shape == table.weight.shape


def test_eval_inserts_nothing_and_resolves_missing_ids(generator):
    known = random_ids(generator, 50)
    unseen = torch.tensor([10**12, 10**12 + 1, 10**12])

    table = lfe.DynamicEmbedding(3, init=IdValued())
    table(known)
    table.eval()
    count, weight = table.num_embeddings, table.weight.detach().clone()
    out = table(unseen)
    assert table.num_embeddings == count and torch.equal(table.weight, weight)
    assert_close(out, IdValued().initial_rows(table._view(count), unseen, {}))

    zeros = lfe.DynamicEmbedding(3, missing="zeros")
    zeros(known)
    zeros.eval()
    assert bool((zeros(torch.cat([unseen, known[:2]]))[:3] == 0).all())

    strict = lfe.DynamicEmbedding(3, missing="error")
    strict.eval()
    with pytest.raises(KeyError, match="unknown"):
        strict(unseen)


def test_extend_passes_side_info_of_new_ids_only():
    seen = {}

    class Recording(IdValued):
        def initial_rows(self, table, ids, side_info):
            seen["ids"], seen["side_info"] = ids.clone(), dict(side_info)
            return super().initial_rows(table, ids, side_info)

        def observe(self, ids, side_info):
            seen["observed"] = ids.clone()

    table = lfe.DynamicEmbedding(2, init=Recording())
    table.extend(torch.tensor([1, 2]), category=["a", "b"])
    rows = table.extend(torch.tensor([2, 3, 3, 4]), category=["b", "c", "c", "d"])
    assert rows.tolist() == [1, 2, 2, 3]
    assert seen["ids"].tolist() == [3, 4]
    assert seen["side_info"] == {"category": ["c", "d"]}
    assert seen["observed"].tolist() == [2, 3, 3, 4]


def test_bad_input_raises_and_leaves_the_table_unchanged(generator):
    table = lfe.DynamicEmbedding(3)
    table(random_ids(generator, 20))
    ids_before, weight_before = table.id_map.ids(), table.weight.detach().clone()

    with pytest.raises(TypeError, match="float32"):
        table(torch.tensor([1.0, 2.0]))
    with pytest.raises(TypeError, match="bool"):
        table(torch.tensor([True]))
    with pytest.raises(ValueError, match="RESERVED_ID"):
        table(torch.tensor([5, lfe.RESERVED_ID]))
    with pytest.raises(ValueError, match="device"):
        table(torch.tensor([1, 2], device="meta"))
    with pytest.raises(ValueError, match="aligned"):
        table.extend(torch.tensor([7, 8]), category=["x"])
    with pytest.raises(TypeError, match="'category' must hold one entry per ID"):
        table.extend(torch.tensor([7]), category=5)
    with pytest.raises(ValueError, match="embedding_dim=3"):
        table.load_state_dict({"weight": torch.zeros(2, 4), "ids": torch.tensor([1, 2])})
    with pytest.raises(ValueError, match="one ID per row"):
        table.load_state_dict({"weight": torch.zeros(2, 3), "ids": torch.tensor([1, 2, 3])})
    with pytest.raises(ValueError, match="duplicate"):
        table.load_state_dict({"weight": torch.zeros(2, 3), "ids": torch.tensor([1, 1])})

    failing = lfe.DynamicEmbedding(3, init=Failing())
    failing.load_state_dict(table.state_dict())
    with pytest.raises(RuntimeError, match="on purpose"):
        failing(torch.tensor([10**9]))

    for module in (table, failing):
        assert torch.equal(module.id_map.ids(), ids_before)
        assert torch.equal(module.weight.detach(), weight_before)


def test_max_rows_is_a_clean_error():
    table = lfe.DynamicEmbedding(2, max_rows=3)
    table(torch.tensor([1, 2]))
    with pytest.raises(RuntimeError, match="max_ids"):
        table(torch.tensor([3, 4]))
    assert table.num_embeddings == 2


def test_constructor_arguments_are_checked():
    with pytest.raises(ValueError, match="embedding_dim"):
        lfe.DynamicEmbedding(0)
    with pytest.raises(ValueError, match="missing"):
        lfe.DynamicEmbedding(2, missing="ignore")
    with pytest.raises(TypeError, match="init"):
        lfe.DynamicEmbedding(2, init="mean")
    with pytest.raises(TypeError, match="dtype"):
        lfe.DynamicEmbedding(2, dtype=torch.int64)


def test_sparse_gradients_and_momentum_follow_growth():
    table = lfe.DynamicEmbedding(3, sparse=True, init=IdValued())
    optimizer = torch.optim.SGD(table.parameters(), lr=0.1, momentum=0.9)
    for ids in ([1, 2], [3], [4, 1]):
        optimizer.zero_grad()
        table(torch.tensor(ids)).sum().backward()
        optimizer.step()
    assert optimizer.state[table.weight]["momentum_buffer"].shape == (4, 3)

    # A gradient accumulated over micro-batches, the second of which adds a row.
    table.zero_grad()
    table(torch.tensor([1])).sum().backward()
    table(torch.tensor([5, 1])).sum().backward()
    assert table.weight.grad.shape == (5, 3)
    assert table.weight.grad.to_dense()[0].tolist() == [2.0, 2.0, 2.0]


@pytest.mark.parametrize("convert", [lambda m: m.double(), lambda m: m.to(torch.bfloat16)])
def test_dtype_conversion_keeps_training_across_growth(convert):
    table = lfe.DynamicEmbedding(2, init=lfe.init.Zeros())
    table(torch.tensor([1]))
    convert(table)
    optimizer = torch.optim.SGD(table.parameters(), lr=1.0)
    for _ in range(3):
        optimizer.zero_grad()
        table(torch.tensor([1])).sum().backward()
        optimizer.step()
    trained = table.weight.detach().clone()
    table(torch.tensor([2]))
    assert table.weight.dtype == trained.dtype
    assert torch.equal(table.weight.detach()[:1], trained)
    assert table.weight.detach()[0].tolist() == [-3.0, -3.0]


@pytest.mark.parametrize("copy_kind", ["deepcopy", "pickle"])
def test_copies_keep_ids_and_rows_and_train_through_growth(generator, copy_kind):
    import copy
    import pickle

    table = lfe.DynamicEmbedding(4, capacity=40)
    ids = random_ids(generator, 30)
    table(ids)
    clone = copy.deepcopy(table) if copy_kind == "deepcopy" else pickle.loads(pickle.dumps(table))
    assert clone.id_map.backend == table.id_map.backend
    assert torch.equal(clone.id_map.ids(), table.id_map.ids())
    assert torch.equal(clone(ids), table(ids))

    optimizer = torch.optim.Adam(clone.parameters(), lr=0.1)
    for batch in (ids[:5], ids[:5], torch.tensor([10**15, 10**15 + 1])):
        optimizer.zero_grad()
        clone(batch).sum().backward()
        optimizer.step()
        trained = clone.weight.detach().clone()
    clone(torch.arange(10**14, 10**14 + 50))  # grows past the capacity
    assert torch.equal(clone.weight.detach()[: trained.shape[0]], trained)
    assert clone.num_embeddings == table.num_embeddings + 52
    assert not torch.equal(clone(ids[:5]), table(ids[:5]))  # the original did not train


def test_failed_extend_leaves_the_random_source_as_it_was():
    class RandomButPicky(lfe.init.Random):
        def observe(self, ids, side_info):
            raise ValueError("category not understood")

    def rows_after(fail_first):
        generator = torch.Generator().manual_seed(1)
        table = lfe.DynamicEmbedding(3, init=RandomButPicky(), generator=generator)
        table(torch.tensor([1, 2]))
        if fail_first:  # draws random rows for ID 3, then rejects its side information
            with pytest.raises(ValueError, match="not understood"):
                table.extend(torch.tensor([3]), category=["x"])
        table.extend(torch.tensor([3]))
        return table.weight.detach()

    assert torch.equal(rows_after(False), rows_after(True))


def test_storage_too_large_is_a_memory_error_naming_capacity():
    with pytest.raises(MemoryError, match="capacity"):
        lfe.DynamicEmbedding(2**20, capacity=2**40)


def test_extend_is_undone_when_the_initialiser_rejects_side_info():
    class Picky(IdValued):
        def observe(self, ids, side_info):
            raise ValueError("side_info['category'] is not understood")

    table = lfe.DynamicEmbedding(2, init=Picky())
    table(torch.tensor([1, 2]))
    weight = table.weight.detach().clone()
    with pytest.raises(ValueError, match="not understood"):
        table.extend(torch.tensor([2, 3]), category=["a", "b"])
    assert table.id_map.ids().tolist() == [1, 2]
    assert torch.equal(table.weight.detach(), weight)


def test_eval_initialisation_does_not_move_the_random_source():
    def grown(evaluate_first):
        table = lfe.DynamicEmbedding(3, generator=torch.Generator().manual_seed(5))
        table(torch.tensor([1, 2, 3]))
        if evaluate_first:
            table.eval()
            table(torch.tensor([77, 78]))
            table.train()
        table(torch.tensor([4]))
        return table.weight.detach()

    assert torch.equal(grown(False), grown(True))
