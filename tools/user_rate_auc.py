"""AUC of the user-only signal on the bundled log: a user's past share of positive ratings.

A reference for `lfe experiment`'s new-item AUC: how much of it the user side explains
before any item vector is involved. Same periods and history length as the defaults.

    .venv/bin/python tools/user_rate_auc.py
"""

from lfe.datasets import movielens_small
from lfe.experiment import ExperimentConfig
from lfe.experiment.metrics import auc
from lfe.experiment.periods import prepare, split_periods


def main() -> None:
    config = ExperimentConfig()
    log = movielens_small()
    data = prepare(log, split_periods(log, config.periods, None), config.history)
    valid = data.histories != data.padding_id
    rate = ((data.history_labels * valid).sum(1) + 1) / (valid.sum(1) + 2)
    evaluated = data.period > 0
    new = evaluated & data.item_is_new
    print(f"user-rate AUC, periods 1-{data.num_periods - 1}:")
    print(f"  all interactions: {auc(rate[evaluated], data.labels[evaluated]):.4f}")
    print(f"  new items:        {auc(rate[new], data.labels[new]):.4f}")


if __name__ == "__main__":
    main()
