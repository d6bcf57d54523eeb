"""Cold-start strategies of `lfe.init`, against hand-computed rows on tiny tables."""

from __future__ import annotations

import logging
import math
import time

import pandas as pd
import pytest
import torch

import lfe
from lfe import ops
from lfe.init import (
    AttributeMean,
    AttributeTable,
    Copy,
    FeatureTable,
    Initializer,
    Mean,
    MultivariateNormal,
    NeighborMean,
    Random,
    SegmentMean,
    TableView,
    Zeros,
)

# Five known products, IDs 10..14, rows 0..4 of this weight.
WEIGHT = torch.tensor(
    [
        [1.0, 2.0, 0.0],
        [3.0, 0.0, 4.0],
        [-2.0, 1.0, 1.0],
        [0.0, 5.0, -1.0],
        [2.0, 2.0, 6.0],
    ]
)
KNOWN_IDS = torch.arange(10, 15)
MEAN_ROW = [0.8, 2.0, 2.0]
# Squared deviations from MEAN_ROW sum to 14.8 + 14 + 34 = 62.8 over 4 x 3 (unbiased).
POOLED_STD = math.sqrt(62.8 / 12)

# Attribute "category" of the known products; means of their rows by value:
#   a: rows 0, 1    -> [2, 1, 2]
#   b: rows 2, 3    -> [-1, 3, 0]
#   c: rows 1, 3, 4 -> [5/3, 7/3, 3]
CATEGORY = {10: "a", 11: ["a", "c"], 12: "b", 13: ("b", "c"), 14: ["c"]}
MEAN_A = [2.0, 1.0, 2.0]
MEAN_B = [-1.0, 3.0, 0.0]
MEAN_OF_B_AND_C = [1 / 3, 8 / 3, 1.5]  # (MEAN_B + MEAN_C) / 2
POOLED_B_AND_C = [0.6, 2.6, 1.8]  # rows 2, 3, 1, 3, 4 summed to [3, 13, 9], over 5
# Attribute "brand": x on rows 0, 2 -> [-0.5, 1.5, 0.5]; y on row 4.
BRAND = {10: "x", 12: "x", 14: "y"}
MEAN_X = [-0.5, 1.5, 0.5]


def make_table(weight=WEIGHT, ids=KNOWN_IDS, seed=0, extra_ids=None) -> TableView:
    """A TableView over `weight` whose rows belong to `ids`; `extra_ids` are in the map
    past the rows in use (being added by the current call)."""
    id_map = lfe.IdMap(backend="torch")
    id_map.insert(ids)
    if extra_ids is not None:
        id_map.insert(torch.as_tensor(extra_ids))
    return TableView(weight, id_map, torch.Generator().manual_seed(seed))


def rows_of(init: Initializer, table: TableView, ids, **side_info) -> torch.Tensor:
    initial = init.initial_rows(table, torch.as_tensor(ids, dtype=torch.int64), side_info)
    rows = ops.materialize(table.weight, initial)
    assert rows.shape == (len(ids), table.dim) and rows.dtype == table.weight.dtype
    return rows


def expect(rows, reference, atol=1e-5):
    if isinstance(reference, list):
        reference = torch.stack([torch.as_tensor(row, dtype=torch.float64) for row in reference])
    reference = torch.as_tensor(reference, dtype=torch.float64)
    torch.testing.assert_close(rows.double(), reference, atol=atol, rtol=1e-5)


# Random, Zeros, Mean


def test_random_scales_like_rows_in_use():
    table = make_table(seed=3)
    rows = rows_of(Random(), table, [20, 21])
    reference = torch.randn(2, 3, generator=torch.Generator().manual_seed(3)).double()
    expect(rows, reference * POOLED_STD)


def test_random_fixed_std_and_fallback_std():
    reference = torch.randn(4, 3, generator=torch.Generator().manual_seed(0)).double()
    expect(rows_of(Random(std=0.5), make_table(), [20, 21, 22, 23]), 0.5 * reference)
    one_row = make_table(WEIGHT[:1], KNOWN_IDS[:1])
    expect(rows_of(Random(fallback_std=0.2), one_row, [20, 21, 22, 23]), 0.2 * reference)


def test_zeros():
    expect(rows_of(Zeros(), make_table(), [20, 21]), torch.zeros(2, 3))


def test_mean_and_noise():
    expect(rows_of(Mean(), make_table(), [20, 21]), [MEAN_ROW, MEAN_ROW])
    noise = torch.randn(2, 3, generator=torch.Generator().manual_seed(0)).double()
    reference = 0.1 * noise + torch.tensor(MEAN_ROW).double()
    expect(rows_of(Mean(noise_std=0.1), make_table(), [20, 21]), reference)


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_output_follows_table_dtype(dtype):
    table = make_table(WEIGHT.to(dtype))
    for init in (Random(), Zeros(), Mean(), MultivariateNormal(), Copy({20: 11})):
        rows = rows_of(init, table, [20, 21])
        assert rows.dtype == dtype
    expect(rows_of(Mean(), table, [20]), [MEAN_ROW], atol=2e-2)


# MultivariateNormal


def test_multivariate_normal_matches_mean_and_covariance():
    generator = torch.Generator().manual_seed(1)
    factor = torch.tensor([[1.0, 0, 0, 0], [0.5, 0.8, 0, 0], [-0.3, 0.2, 0.6, 0], [0, 0, 0.4, 0.3]])
    weight = torch.randn(20000, 4, generator=generator) @ factor.T + torch.tensor([1.0, -2, 0, 3])
    table = make_table(weight, torch.arange(20000), seed=2)

    rows = rows_of(MultivariateNormal(), table, torch.arange(10**6, 10**6 + 20000)).double()

    # Standard errors with 20000 samples of unit-scale entries are about 0.01; allow 5.
    torch.testing.assert_close(rows.mean(0), weight.double().mean(0), atol=0.05, rtol=0)
    torch.testing.assert_close(rows.T.cov(), weight.double().T.cov(), atol=0.05, rtol=0)


def test_multivariate_normal_falls_back_to_mean(caplog):
    one_row = make_table(WEIGHT[:1], KNOWN_IDS[:1])
    expect(rows_of(MultivariateNormal(), one_row, [20, 21]), WEIGHT[:1].expand(2, 3))

    same = make_table(torch.tensor([[1.0, 2.0, 3.0]]).repeat(4, 1), KNOWN_IDS[:4])
    with caplog.at_level(logging.WARNING, logger="lfe.init.statistics"):
        rows = rows_of(MultivariateNormal(), same, [20, 21])
    expect(rows, [[1.0, 2.0, 3.0]] * 2)
    assert "not positive definite" in caplog.text


def test_multivariate_normal_with_fewer_rows_than_dims_stays_in_their_span():
    weight = torch.tensor([[1.0, 0, 0, 0, 0], [0, 1.0, 0, 0, 0], [0, 0, 1.0, 0, 0]])
    rows = rows_of(MultivariateNormal(), make_table(weight, KNOWN_IDS[:3]), range(20, 120))
    assert rows[:, 3:].abs().max() < 1e-2
    assert rows[:, :3].std(0).min() > 0.2
    torch.testing.assert_close(rows.sum(1), torch.ones(100), atol=1e-2, rtol=0)


# Determinism and the empty table


@pytest.mark.parametrize("init", [Random(), Mean(noise_std=0.3), MultivariateNormal()])
def test_same_seed_same_rows(init):
    first = rows_of(init, make_table(seed=7), [20, 21, 22])
    again = rows_of(init, make_table(seed=7), [20, 21, 22])
    other = rows_of(init, make_table(seed=8), [20, 21, 22])
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


EVERY_STRATEGY = [
    Random(),
    Zeros(),
    Mean(),
    MultivariateNormal(),
    AttributeMean("category", {"category": CATEGORY}),
    NeighborMean((KNOWN_IDS, torch.randn(5, 2)), k=2),
    Copy({20: 10}),
]


@pytest.mark.parametrize("init", EVERY_STRATEGY, ids=lambda init: type(init).__name__)
def test_empty_table(init):
    table = make_table(torch.empty(0, 3), torch.empty(0, dtype=torch.int64), seed=4)
    rows = rows_of(init, table, [20, 21, 22])
    assert torch.isfinite(rows).all()
    if not isinstance(init, Zeros):
        generator = torch.Generator().manual_seed(4)
        reference = torch.randn(3, 3, generator=generator, dtype=torch.float64)
        expect(rows, 0.1 * reference)  # all end at Random's fallback_std


@pytest.mark.parametrize("init", EVERY_STRATEGY, ids=lambda init: type(init).__name__)
def test_no_ids(init):
    initial = init.initial_rows(make_table(), torch.empty(0, dtype=torch.int64), {})
    assert ops.materialize(WEIGHT, initial).shape == (0, 3)


# AttributeMean


def test_attribute_mean_single_and_multi_valued():
    init = AttributeMean("category", {"category": CATEGORY})
    rows = rows_of(init, make_table(), [20, 21, 22, 23], category=["a", ["b", "c"], ["z"], None])
    expect(rows, [MEAN_A, MEAN_OF_B_AND_C, MEAN_ROW, MEAN_ROW])

    pooled = AttributeMean("category", {"category": CATEGORY}, multi_value="pooled")
    expect(rows_of(pooled, make_table(), [21], category=[("c", "b", "b")]), [POOLED_B_AND_C])


def test_attribute_mean_returns_a_recipe_when_mixed_with_a_recipe_fallback():
    init = AttributeMean("category", {"category": CATEGORY}, fallback=Copy({21: 14}))
    initial = init.initial_rows(make_table(), torch.tensor([20, 21]), {"category": ["b", "z"]})
    assert isinstance(initial, SegmentMean)
    expect(ops.materialize(WEIGHT, initial), [MEAN_B, WEIGHT[4]])


def test_attribute_mean_fallback_chain():
    catalogue = {"category": CATEGORY, "brand": BRAND}
    init = AttributeMean(["category", "brand"], catalogue, fallback=Zeros())
    rows = rows_of(
        init,
        make_table(),
        [30, 31, 32, 33],
        category=["z", "a", "z", None],
        brand=["x", "x", "q", "y"],
    )
    expect(rows, [MEAN_X, MEAN_A, [0, 0, 0], WEIGHT[4]])


def test_attribute_mean_catalogue_forms_and_unknown_products():
    # Product 40 is in the catalogue but new; 41 is in the catalogue but not in the table,
    # so it must not count as a known "a" product.
    category = {**CATEGORY, 40: "b", 41: "a"}
    series = pd.Series(list(category.values()), index=list(category.keys()))
    frame = pd.DataFrame({"category": series, "other": 0})
    for catalogue in ({"category": category}, {"category": series}, frame):
        init = AttributeMean("category", catalogue)
        expect(rows_of(init, make_table(), [40, 42], category=[None, "a"]), [MEAN_B, MEAN_A])


def test_attribute_mean_ignores_ids_being_added_in_this_call():
    table = make_table(extra_ids=[41])  # 41 has row 5, past the rows in use
    init = AttributeMean("category", {"category": {**CATEGORY, 41: "a"}})
    expect(rows_of(init, table, [42], category=["a"]), [MEAN_A])


def test_attribute_mean_tensor_codes():
    codes = {10: [0], 11: [0, 2], 12: [1], 13: [1, 2], 14: 2}
    init = AttributeMean("category", {"category": codes})
    table = make_table()

    one_per_id = torch.tensor([0, 1, -1])
    expect(rows_of(init, table, [20, 21, 22], category=one_per_id), [MEAN_A, MEAN_B, MEAN_ROW])
    padded = torch.tensor([[1, 2], [0, -1], [-1, -1], [2, 1]])
    expected = [MEAN_OF_B_AND_C, MEAN_A, MEAN_ROW, MEAN_OF_B_AND_C]
    expect(rows_of(init, table, [20, 21, 22, 23], category=padded), expected)
    expect(rows_of(init, table, [20], category=[[2, 1, 1]]), [MEAN_OF_B_AND_C])


def test_attribute_mean_csr_catalogue():
    table = AttributeTable(
        torch.tensor([14, 10, 12]), torch.tensor([0, 1, 2, 3]), torch.tensor([5, 7, 7])
    )
    init = AttributeMean("brand", {"brand": table})
    expect(rows_of(init, make_table(), [20, 21], brand=torch.tensor([7, 5])), [MEAN_X, WEIGHT[4]])


def test_attribute_mean_observe_records_side_info():
    init = AttributeMean(["category"])
    table = make_table()
    init.observe(KNOWN_IDS, {"category": [CATEGORY[int(i)] for i in KNOWN_IDS]})
    expect(rows_of(init, table, [20], category=[["b", "c"]]), [MEAN_OF_B_AND_C])

    # A later observation of a product replaces its values: 10 moves from "a" to "b".
    init.observe(torch.tensor([10]), {"category": ["b"]})
    expect(rows_of(init, table, [20], category=["a"]), [WEIGHT[1]])


def test_attribute_mean_passes_aligned_side_info_to_its_fallback():
    features = torch.tensor([[1.0, 0], [0, 1], [1, 1], [-1, 0], [0, -1]])
    neighbors = NeighborMean((KNOWN_IDS, features), k=1)
    init = AttributeMean("category", {"category": CATEGORY}, fallback=neighbors)
    new_features = torch.tensor([[0.0, 1.0], [0.0, -1.0], [-1.0, 0.1]])
    side_info = {"category": ["z", "a", None], "features": new_features}
    rows = rows_of(init, make_table(), [20, 21, 22], **side_info)
    expect(rows, [WEIGHT[1], MEAN_A, WEIGHT[3]])


@pytest.mark.parametrize("multi_value", ["mean_of_values", "pooled"])
def test_attribute_mean_matches_a_per_product_reference(multi_value):
    generator = torch.Generator().manual_seed(5)
    weight = torch.randn(60, 4, generator=generator)
    table = make_table(weight, torch.arange(1000, 1060))
    known_values = {
        1000 + i: torch.randperm(8, generator=generator)[: i % 4].tolist() for i in range(60)
    }
    new_values = [torch.randperm(10, generator=generator)[: 1 + i % 3].tolist() for i in range(40)]
    init = AttributeMean("tags", {"tags": known_values}, multi_value=multi_value, fallback=Zeros())

    rows = rows_of(init, table, range(5000, 5040), tags=new_values)

    reference = torch.zeros(40, 4, dtype=torch.float64)
    for i, values in enumerate(new_values):
        groups = []
        for value in values:
            members = [product - 1000 for product, tags in known_values.items() if value in tags]
            if members:
                groups.append(weight.double()[members])
        if groups and multi_value == "mean_of_values":
            reference[i] = torch.stack([group.mean(0) for group in groups]).mean(0)
        elif groups:
            reference[i] = torch.cat(groups).mean(0)
    expect(rows, reference)


def test_observe_with_bad_side_info_changes_nothing():
    init = AttributeMean(["category", "brand"])
    with pytest.raises(ValueError, match=r"side_info\['brand'\]"):
        init.observe(KNOWN_IDS, {"category": list("aabbc"), "brand": ["x"]})
    assert len(init.tables["category"]) == 0


def test_attribute_mean_errors_name_the_argument():
    init = AttributeMean("category", {"category": CATEGORY})
    table = make_table()
    with pytest.raises(ValueError, match=r"side_info\['category'\] has 1 entries.*\(2\)"):
        rows_of(init, table, [20, 21], category=["a"])
    with pytest.raises(TypeError, match=r"side_info\['category'\].*dtype torch.float32"):
        rows_of(init, table, [20], category=torch.tensor([1.0]))
    with pytest.raises(ValueError, match=r"side_info\['category'\].*not both"):
        rows_of(init, table, [20], category=[3])
    strict = AttributeMean("category", {"category": CATEGORY}, on_missing="error")
    with pytest.raises(KeyError, match=r"1 of 2 new IDs \(e.g. ID 21\).*side_info\['category'\]"):
        rows_of(strict, table, [20, 21], category=["z", None])
    with pytest.raises(ValueError, match=r"catalogue holds attributes \['brnad'\]"):
        AttributeMean("brand", {"brnad": BRAND})
    with pytest.raises(ValueError, match="multi_value"):
        AttributeMean("brand", multi_value="union")
    with pytest.raises(TypeError, match="fallback"):
        AttributeMean("brand", fallback="mean")


# NeighborMean

FEATURES = torch.tensor([[1.0, 0], [0, 1], [1, 1], [-1, 0], [0, -1]])


def test_neighbor_mean_cosine_and_euclidean():
    cosine = NeighborMean((KNOWN_IDS, FEATURES), k=2)
    # [1, 0.1] is closest in angle to 10 ([1, 0]) and then 12 ([1, 1]).
    expect(rows_of(cosine, make_table(), [20], features=torch.tensor([[1.0, 0.1]])), [MEAN_X])

    # [2, 2.5] is at distance sqrt(3.25) from 12 ([1, 1]) and 2.5 from 11 ([0, 1]).
    euclidean = NeighborMean((KNOWN_IDS, FEATURES), k=2, metric="euclidean")
    query = {"features": torch.tensor([[2.0, 2.5]])}
    expect(rows_of(euclidean, make_table(), [20], **query), [[0.5, 0.5, 2.5]])

    weighted = NeighborMean((KNOWN_IDS, FEATURES), k=2, metric="euclidean", weighting="distance")
    near, far = 1 / (math.sqrt(3.25) + 1e-6), 1 / (2.5 + 1e-6)
    reference = (near * WEIGHT[2].double() + far * WEIGHT[1].double()) / (near + far)
    expect(rows_of(weighted, make_table(), [20], **query), reference[None])


def test_neighbor_mean_more_neighbours_than_known_products():
    init = NeighborMean((KNOWN_IDS, FEATURES), k=50)
    expect(rows_of(init, make_table(), [20], features=torch.tensor([[0.3, 0.2]])), [MEAN_ROW])


def test_neighbor_mean_features_from_catalogue_and_fallback():
    vectors = {int(i): f for i, f in zip(KNOWN_IDS, FEATURES, strict=True)}
    catalogue = FeatureTable.from_dict({**vectors, 20: [0.0, 2.0]})
    init = NeighborMean(catalogue, k=1, fallback=Zeros())
    initial = init.initial_rows(make_table(), torch.tensor([20, 21]), {})
    assert isinstance(initial, SegmentMean)
    expect(ops.materialize(WEIGHT, initial), [WEIGHT[1], [0, 0, 0]])


def test_neighbor_mean_observe_and_dataframe_catalogue():
    init = NeighborMean(k=1, key="content")
    init.observe(KNOWN_IDS[:3], {"content": FEATURES[:3]})
    init.observe(KNOWN_IDS[3:], {"content": FEATURES[3:].numpy()})
    expect(rows_of(init, make_table(), [20], content=torch.tensor([[-2.0, 0.1]])), [WEIGHT[3]])

    frame = pd.DataFrame(FEATURES.numpy(), index=KNOWN_IDS.numpy(), columns=["f0", "f1"])
    from_frame = NeighborMean(frame, k=1)
    expect(rows_of(from_frame, make_table(), [20], features=[[0.1, -3.0]]), [WEIGHT[4]])


def test_neighbor_mean_errors_name_the_argument():
    init = NeighborMean((KNOWN_IDS, FEATURES), k=2)
    with pytest.raises(ValueError, match=r"side_info\['features'\] must have shape \(1, 2\)"):
        rows_of(init, make_table(), [20], features=torch.ones(1, 3))
    with pytest.raises(ValueError, match=r"side_info\['features'\] must have shape \(2, 2\)"):
        rows_of(init, make_table(), [20, 21], features=torch.ones(1, 2))
    strict = NeighborMean((KNOWN_IDS, FEATURES), on_missing="error")
    with pytest.raises(KeyError, match=r"side_info\['features'\]"):
        rows_of(strict, make_table(), [20])
    with pytest.raises(ValueError, match="features must have shape"):
        NeighborMean((KNOWN_IDS, torch.ones(4, 2)))
    with pytest.raises(ValueError, match="k must be a positive int"):
        NeighborMean(k=0)
    with pytest.raises(ValueError, match="metric"):
        NeighborMean(metric="dot")


# Copy


def test_copy_from_mapping_and_side_info():
    init = Copy({20: 12, 21: 999, 22: 10}, fallback=Zeros())
    copy_from = torch.tensor([lfe.RESERVED_ID, lfe.RESERVED_ID, 14, 13])
    rows = rows_of(init, make_table(), [20, 21, 22, 23], copy_from=copy_from)
    expect(rows, [WEIGHT[2], [0, 0, 0], WEIGHT[4], WEIGHT[3]])

    pairs = Copy((torch.tensor([20]), torch.tensor([11])))
    expect(rows_of(pairs, make_table(), [20, 21], copy_from=[None, 10]), [WEIGHT[1], WEIGHT[0]])


def test_copy_needs_a_row_in_use():
    table = make_table(extra_ids=[30])  # 30 is being added in this call
    expect(rows_of(Copy({20: 30}), table, [20]), [MEAN_ROW])


def test_copy_errors_name_the_argument():
    with pytest.raises(ValueError, match=r"side_info\['copy_from'\] must have shape \(2,\)"):
        rows_of(Copy(), make_table(), [20, 21], copy_from=torch.tensor([10]))
    with pytest.raises(KeyError, match="no predecessor"):
        rows_of(Copy(on_missing="error"), make_table(), [20])
    with pytest.raises(ValueError, match="more than one predecessor"):
        Copy((torch.tensor([1, 1]), torch.tensor([2, 3])))
    with pytest.raises(ValueError, match="on_missing"):
        Copy(on_missing="ignore")


def test_combined_recipes_keep_weights_and_noise():
    # NeighborMean's weighted recipe, Copy's recipe and Mean's dense rows, in one recipe.
    copy = Copy({21: 13}, fallback=Mean())
    options = dict(k=2, metric="euclidean", weighting="distance", fallback=copy)
    init = NeighborMean((KNOWN_IDS, FEATURES), **options)
    features = torch.tensor([[2.0, 2.5]])
    initial = init.initial_rows(make_table(), torch.tensor([20, 21, 22]), {})
    assert isinstance(initial, SegmentMean)
    expect(ops.materialize(WEIGHT, initial), [MEAN_ROW, WEIGHT[3], MEAN_ROW])

    catalogue_ids = torch.cat([KNOWN_IDS, torch.tensor([20])])
    init = NeighborMean(FeatureTable(catalogue_ids, torch.cat([FEATURES, features])), **options)
    initial = init.initial_rows(make_table(), torch.tensor([22, 21, 20]), {})
    near, far = 1 / (math.sqrt(3.25) + 1e-6), 1 / (2.5 + 1e-6)
    neighbours = (near * WEIGHT[2].double() + far * WEIGHT[1].double()) / (near + far)
    expect(ops.materialize(WEIGHT, initial), [MEAN_ROW, WEIGHT[3], neighbours.tolist()])


# A user-defined strategy


class FirstRow(Initializer):
    def initial_rows(self, table, ids, side_info):
        indptr = torch.arange(ids.numel() + 1) * min(table.num_rows, 1)
        return SegmentMean(indptr, torch.zeros(int(indptr[-1]), dtype=torch.int64))


def test_user_strategy_as_a_fallback():
    init = AttributeMean("category", {"category": CATEGORY}, fallback=FirstRow())
    expect(rows_of(init, make_table(), [20, 21], category=["z", "b"]), [WEIGHT[0], MEAN_B])


# Cost: 100K rows x 64 dims


def test_cost_on_a_large_table():
    generator = torch.Generator().manual_seed(0)
    num_rows, dim, num_new = 100_000, 64, 10_000
    weight = torch.randn(num_rows, dim, generator=generator)
    table = make_table(weight, torch.arange(num_rows))
    new_ids = torch.arange(num_rows, num_rows + num_new)

    categories = torch.randint(0, 1000, (num_rows + num_new,), generator=generator)
    everyone = torch.arange(num_rows + num_new)
    catalogue = {"category": (everyone, torch.arange(num_rows + num_new + 1), categories)}
    features = torch.randn(num_rows, 16, generator=generator)
    strategies = {
        "Random": (Random(), {}),
        "Mean": (Mean(), {}),
        "MultivariateNormal": (MultivariateNormal(), {}),
        "AttributeMean": (AttributeMean("category", catalogue), {}),
        "NeighborMean": (
            NeighborMean((torch.arange(num_rows), features)),
            {"features": torch.randn(500, 16)},
        ),
        "Copy": (
            Copy(),
            {"copy_from": torch.randint(0, num_rows, (num_new,), generator=generator)},
        ),
    }
    for name, (init, side_info) in strategies.items():
        ids = new_ids[: len(side_info["features"])] if "features" in side_info else new_ids
        start = time.perf_counter()
        rows = ops.materialize(weight, init.initial_rows(table, ids, side_info))
        elapsed = time.perf_counter() - start
        assert rows.shape == (ids.numel(), dim) and torch.isfinite(rows).all()
        assert elapsed < 10, f"{name} took {elapsed:.1f} s"

    # AttributeMean on the large table agrees with a direct per-category mean.
    attribute_mean = strategies["AttributeMean"][0]
    rows = ops.materialize(weight, attribute_mean.initial_rows(table, new_ids[:50], {}))
    for row, category in zip(rows, categories[num_rows : num_rows + 50], strict=True):
        members = weight[categories[:num_rows] == category]
        torch.testing.assert_close(row, members.mean(0), atol=1e-5, rtol=1e-4)


# Through lfe.DynamicEmbedding


def test_attribute_mean_inside_dynamic_embedding():
    generator = torch.Generator().manual_seed(0)
    init = AttributeMean("category", {"category": {50: "c"}})
    emb = lfe.DynamicEmbedding(3, init=init, backend="torch", generator=generator)
    # Duplicated IDs in one call: the first occurrence's side information is used.
    emb.extend(torch.tensor([10, 11, 12, 11, 13, 14]), category=["a", "a", "b", "a", "c", "c"])
    weight = emb.weight.detach()

    emb.extend(torch.tensor([20]), category=[["a", "b"]])
    reference = (weight[0:2].mean(0) + weight[2]) / 2
    torch.testing.assert_close(emb.weight.detach()[5], reference)

    # A training forward carries no side information: the catalogue gives product 50's.
    emb.train()
    emb(torch.tensor([50]))
    torch.testing.assert_close(emb.weight.detach()[6], weight[3:5].mean(0))


def test_copy_and_neighbor_mean_inside_dynamic_embedding():
    init = NeighborMean(k=1, fallback=Copy({30: 10}))
    emb = lfe.DynamicEmbedding(3, init=init, backend="torch")
    emb.extend(KNOWN_IDS, features=FEATURES)
    weight = emb.weight.detach().clone()

    emb.eval()  # missing="init": rows computed for unseen IDs without inserting them
    with torch.no_grad():
        vectors = emb(torch.tensor([30, 11]))
    torch.testing.assert_close(vectors, weight[[0, 1]])
    assert emb.num_embeddings == 5

    emb.extend(torch.tensor([31, 32]), features=torch.tensor([[0.1, -1.0], [-1.0, 0.2]]))
    torch.testing.assert_close(emb.weight.detach()[5:], weight[[4, 3]])
