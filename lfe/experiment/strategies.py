"""The strategies the experiment compares, and the cold-start initialiser behind each."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import numpy as np
import torch

from lfe import init
from lfe.datasets import EventLog

STATIC, EXTEND, RETRAIN = "static", "extend", "retrain"


@dataclasses.dataclass(frozen=True)
class Strategy:
    """One way of handling new products.

    kind: "static" (the first period's vocabulary, new products share one unknown row),
        "extend" (rows appended for new products, started by `make_init`, training goes on)
        or "retrain" (a new model trained from scratch on all periods so far, every period).
    """

    name: str
    kind: str
    make_init: Callable[[], init.Initializer]
    description: str


def available_strategies(log: EventLog, neighbors: int = 10) -> dict[str, Strategy]:
    """Every strategy the log supports, by name, in report order.

    Attribute-based strategies appear only when the log has item attributes: the first
    attribute drives `extend-attribute` and a multi-hot vector of all attributes' values
    drives `extend-neighbor`.
    """
    strategies = [
        Strategy(STATIC, STATIC, init.Random, "first period's items only; one shared unknown row"),
        Strategy("extend-random", EXTEND, init.Random, "new rows ~ N(0, std of known rows)"),
        Strategy("extend-zeros", EXTEND, init.Zeros, "new rows = 0"),
        Strategy("extend-mean", EXTEND, init.Mean, "new rows = mean of known rows"),
        Strategy(
            "extend-mvn", EXTEND, init.MultivariateNormal, "new rows ~ N(mean, cov of known rows)"
        ),
    ]
    if log.item_attributes:
        attributes = sorted(log.item_attributes)

        @functools.cache
        def features():
            return _multi_hot_features(log)

        strategies += [
            Strategy(
                "extend-attribute",
                EXTEND,
                lambda: init.AttributeMean(attributes, catalogue=dict(log.item_attributes)),
                f"new rows = mean of known items sharing a {attributes[0]}",
            ),
            Strategy(
                "extend-neighbor",
                EXTEND,
                lambda: init.NeighborMean(features(), k=neighbors),
                f"new rows = mean of the {neighbors} nearest known items by attribute vector",
            ),
        ]
    strategies.append(
        Strategy(RETRAIN, RETRAIN, init.Random, "from scratch on all periods so far, each period")
    )
    return {strategy.name: strategy for strategy in strategies}


def _multi_hot_features(log: EventLog) -> init.FeatureTable:
    """One multi-hot vector per item over the values of all its attributes."""
    item_blocks, feature_blocks, width = [], [], 0
    all_items = np.unique(
        np.concatenate([values.index.to_numpy() for values in log.item_attributes.values()])
    )
    for name in sorted(log.item_attributes):
        codes = log.attribute_codes(name)
        rows = np.searchsorted(all_items, codes.item_ids)[codes.segment_ids()]
        item_blocks.append(rows)
        feature_blocks.append(codes.codes + width)
        width += len(codes.vocabulary)
    features = torch.zeros(len(all_items), width)
    features[np.concatenate(item_blocks), np.concatenate(feature_blocks)] = 1.0
    return init.FeatureTable(torch.from_numpy(all_items), features)
