"""The incremental-catalogue experiment: periods, metrics, a tiny end-to-end run, the CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from lfe.cli import main
from lfe.datasets import EventLog, movielens_small
from lfe.experiment import ExperimentConfig, run_experiment
from lfe.experiment.metrics import auc, hit_rate_and_ndcg
from lfe.experiment.periods import prepare, split_periods


def synthetic_log(events: int = 600, seed: int = 0, implicit: bool = False) -> EventLog:
    """A small log whose catalogue grows over time, with a genre per item."""
    rng = np.random.default_rng(seed)
    time = np.sort(rng.integers(0, 10**6, events))
    items = (time // 2000) + rng.integers(0, 40, events)  # later events reach newer items
    frame = pd.DataFrame(
        {
            "user": rng.integers(0, 30, events),
            "item": items,
            "time": pd.to_datetime(time, unit="s", utc=True),
            "label": 1.0 if implicit else rng.integers(1, 6, events).astype(float),
        }
    )
    genres = pd.Series({int(item): (f"g{item % 4}",) for item in np.unique(items)}, dtype=object)
    return EventLog.from_frame(
        frame,
        name="synthetic",
        implicit=implicit,
        item_attributes={"genre": genres},
        positive_threshold=None if implicit else 4.0,
    )


def test_auc_matches_pairwise_counting():
    scores = torch.tensor([0.1, 0.4, 0.35, 0.8, 0.4])
    labels = torch.tensor([0, 0, 1, 1, 1])
    # positive-negative pairs: 0.35 beats 0.1 only; 0.8 beats both; 0.4 beats 0.1, ties 0.4
    assert auc(scores, labels) == pytest.approx(4.5 / 6)
    assert math.isnan(auc(scores, torch.ones(5)))


def test_hit_rate_and_ndcg_count_ties_against_the_true_item():
    scores = torch.tensor([[5.0, 1.0, 2.0], [1.0, 3.0, 1.0], [2.0, 2.0, 0.0]])
    hr, ndcg = hit_rate_and_ndcg(scores, k=2)
    # ranks of the true item: 0, 2, 1 -> hits at k=2: yes, no, yes
    assert hr == pytest.approx(2 / 3)
    assert ndcg == pytest.approx((1.0 + 1.0 / math.log2(3)) / 3)


def test_equal_periods_never_split_a_timestamp_and_cover_the_log():
    log = synthetic_log()
    periods = split_periods(log, 4, None)
    assert periods.min() == 0 and periods.max() == 3
    assert bool((np.diff(periods) >= 0).all())
    times = log.events["time"].to_numpy()
    for period in range(3):
        assert times[periods == period].max() < times[periods == period + 1].min()
    assert np.bincount(periods).min() > len(log) // 8


def test_calendar_periods_and_bad_period_arguments():
    log = synthetic_log()
    weeks = split_periods(log, None, "week")
    assert weeks.max() + 1 == log.events["time"].dt.tz_localize(None).dt.to_period("W").nunique()
    with pytest.raises(ValueError, match="periods"):
        split_periods(log, 1, None)
    with pytest.raises(ValueError, match="period_by"):
        split_periods(log, None, "fortnight")


def test_histories_hold_the_users_previous_items_newest_first():
    log = synthetic_log(events=200)
    data = prepare(log, split_periods(log, 2, None), history_length=3)
    events = log.events
    for position in (10, 50, 199):
        user = events["user"].iloc[position]
        earlier = events.iloc[:position]
        expected = earlier[earlier["user"] == user]["item"].to_list()[::-1][:3]
        row = data.histories[position].tolist()
        assert row[: len(expected)] == expected
        assert all(value == data.padding_id for value in row[len(expected) :])


@pytest.mark.parametrize("implicit", [False, True])
def test_tiny_experiment_reports_every_strategy_and_period(implicit):
    log = synthetic_log(implicit=implicit)
    config = ExperimentConfig(periods=2, epochs=1, dim=4, history=3, negatives=9)
    results = run_experiment(log, config)

    names = list(results["strategies"])
    assert names[0] == "static" and names[-1] == "retrain"
    assert {"extend-attribute", "extend-neighbor", "extend-mean"} <= set(names)
    assert len(results["records"]) == 2 * len(names)
    for record in results["records"]:
        assert record["train_seconds"] > 0 and record["table_rows"] > 0
        if record["period"] == 1:
            for key in ("auc_all", "auc_new", "hr@10_all", "hr@10_new"):
                assert 0.0 <= record[key] <= 1.0
    static_rows = results["overall"]["static"]["table_rows"]
    extended_rows = results["overall"]["extend-mean"]["table_rows"]
    assert extended_rows == log.num_items and static_rows < extended_rows


def test_same_seed_gives_identical_numbers():
    log = synthetic_log()
    config = ExperimentConfig(
        periods=2,
        epochs=1,
        dim=4,
        history=3,
        negatives=9,
        strategies=("static", "extend-random", "retrain"),
    )
    first, second = run_experiment(log, config), run_experiment(log, config)
    strip = [{k: v for k, v in r.items() if k != "train_seconds"} for r in first["records"]]
    again = [{k: v for k, v in r.items() if k != "train_seconds"} for r in second["records"]]
    assert strip == again


def test_unknown_strategy_is_a_clear_error():
    with pytest.raises(ValueError, match="not available"):
        run_experiment(synthetic_log(), ExperimentConfig(strategies=("extend-magic",)))


def test_cli_writes_table_and_files(tmp_path, capsys):
    log = synthetic_log()
    events = log.events.assign(time=log.events["time"].astype("int64") // 10**9)
    events["genre"] = events["item"].map(lambda item: f"g{item % 4}")
    path = tmp_path / "log.csv"
    events.to_csv(path, index=False)

    code = main(
        [
            "experiment",
            "--events",
            str(path),
            "--label-column",
            "label",
            "--time-unit",
            "s",
            "--positive-threshold",
            "4",
            "--attribute",
            "genre",
            "--periods",
            "2",
            "--epochs",
            "1",
            "--dim",
            "4",
            "--strategies",
            "static,extend-attribute",
            "--out",
            str(tmp_path / "out"),
            "--no-progress",
        ]
    )

    assert code == 0
    printed = capsys.readouterr().out
    assert "| static |" in printed and "| extend-attribute |" in printed
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert set(results["overall"]) == {"static", "extend-attribute"}
    assert (tmp_path / "out" / "results.csv").read_text().startswith("period,strategy")
    assert (tmp_path / "out" / "results.png").stat().st_size > 1000


def test_cli_reports_bad_input_without_a_traceback(tmp_path, capsys):
    assert main(["experiment", "--events", str(tmp_path / "absent.csv")]) == 2
    assert "absent.csv" in capsys.readouterr().err


def test_bundled_log_splits_into_periods_with_new_items():
    log = movielens_small()
    data = prepare(log, split_periods(log, 5, None), history_length=2)
    new_per_period = [int(data.item_is_new[data.period == p].sum()) for p in range(5)]
    assert all(count > 1000 for count in new_per_period)


@pytest.mark.parametrize(
    ("extra_arguments", "message"),
    [
        (["--periods", "2"], "one period"),
        (["--periods", "1"], "at least 2"),
        (["--seed", str(2**70)], "seed"),
        (["--buys", "buys.dat"], "--buys is for --format yoochoose"),
    ],
)
def test_cli_rejects_what_the_data_cannot_support(tmp_path, capsys, extra_arguments, message):
    path = tmp_path / "same_instant.csv"
    path.write_text("user,item,time\n1,10,5\n2,11,5\n3,12,5\n1,11,5\n")
    arguments = ["experiment", "--events", str(path), "--time-unit", "s", "--no-progress"]
    assert main(arguments + extra_arguments + ["--out", str(tmp_path / "out")]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra_arguments", "message"),
    [
        (["--positive-threshold", "4"], "--positive-threshold needs --label-column"),
        (["--label-column", "stars", "--positive-threshold", "9"], "no positive interaction"),
        (["--strategies", "extend-magic"], "not available"),
        (["--out", "log.csv/sub"], "--out"),
    ],
)
def test_cli_rejects_settings_after_loading(tmp_path, capsys, extra_arguments, message):
    path = tmp_path / "log.csv"
    path.write_text("user,item,time,stars\n1,10,5,3\n2,11,6,4\n3,12,7,5\n1,11,8,1\n")
    extra_arguments = [str(path) + "/sub" if a == "log.csv/sub" else a for a in extra_arguments]
    arguments = ["experiment", "--events", str(path), "--time-unit", "s", "--periods", "2"]
    arguments += ["--no-progress", "--out", str(tmp_path / "out")]
    assert main(arguments + extra_arguments) == 2  # a later --out wins over the first
    assert message in capsys.readouterr().err


def test_cli_data_options_need_events(capsys, tmp_path):
    assert main(["experiment", "--format", "yoochoose", "--no-progress"]) == 2
    assert "--format only apply together with --events" in capsys.readouterr().err
    assert main(["experiment", "--time-unit", "s", "--no-progress"]) == 2
    assert "--time-unit only apply together with --events" in capsys.readouterr().err
    clicks = tmp_path / "clicks.dat"
    clicks.write_text("1,2014-04-07T10:51:09.277Z,214536502,0\n")
    assert (
        main(
            [
                "experiment",
                "--events",
                str(clicks),
                "--format",
                "yoochoose",
                "--attribute",
                "genre",
                "--no-progress",
            ]
        )
        == 2
    )
    assert "--attribute describe a log of --format events" in capsys.readouterr().err
