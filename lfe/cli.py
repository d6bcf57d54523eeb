"""The `lfe` command line. `lfe experiment` replays an interaction log period by period."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from lfe.experiment import (
    ExperimentConfig,
    periods_table,
    run_experiment,
    summary_table,
    write_results,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lfe", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    experiment = commands.add_parser(
        "experiment",
        help="compare cold-start strategies on a log replayed period by period",
        description=(
            "Replay an interaction log in time order, split into periods. Each period, every "
            "strategy is first evaluated on it, then trained on it. With no data options the "
            "bundled MovieLens ml-latest-small ratings are used."
        ),
    )
    data = experiment.add_argument_group("data (default: the bundled MovieLens log)")
    data.add_argument("--events", type=Path, help="your own log: CSV, CSV.gz or Parquet")
    data.add_argument("--user-column", default="user")
    data.add_argument("--item-column", default="item")
    data.add_argument("--time-column", default="time")
    data.add_argument("--label-column", help="rating or weight column (default: implicit)")
    data.add_argument("--time-unit", help="unit of numeric times, e.g. s or ms")
    data.add_argument("--positive-threshold", type=float, help="labels >= this are positive")
    data.add_argument(
        "--attribute", action="append", default=[], help="item attribute column (repeatable)"
    )
    data.add_argument(
        "--format",
        choices=("events", "retailrocket", "yoochoose"),
        default="events",
        help="layout of --events (default: events)",
    )
    data.add_argument(
        "--item-properties",
        type=Path,
        action="append",
        default=[],
        help="RetailRocket item_properties file (repeatable)",
    )
    data.add_argument("--buys", type=Path, help="YooChoose buys file")

    run = experiment.add_argument_group("run")
    periods = run.add_mutually_exclusive_group()
    periods.add_argument(
        "--periods",
        type=int,
        default=ExperimentConfig.periods,
        help="equal-sized periods (default %(default)s)",
    )
    periods.add_argument(
        "--period-by",
        choices=("day", "week", "month"),
        help="calendar periods instead of equal-sized ones",
    )
    run.add_argument("--strategies", help="comma-separated names (default: all supported)")
    run.add_argument("--epochs", type=int, default=ExperimentConfig.epochs)
    run.add_argument("--dim", type=int, default=ExperimentConfig.dim)
    run.add_argument(
        "--history",
        type=int,
        default=ExperimentConfig.history,
        help="recent items per user that form the user's context",
    )
    run.add_argument("--batch-size", type=int, default=ExperimentConfig.batch_size)
    run.add_argument("--lr", type=float, default=ExperimentConfig.lr)
    run.add_argument(
        "--seed", type=int, default=ExperimentConfig.seed, help="same seed, same numbers"
    )
    run.add_argument(
        "--out",
        type=Path,
        default=Path("lfe-results"),
        help="folder for results.json, results.csv, results.png",
    )
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    if arguments.command == "experiment":
        return _experiment(arguments)
    return 2


def _experiment(arguments: argparse.Namespace) -> int:
    try:
        _check_data_options(arguments)
        if arguments.out.exists() and not arguments.out.is_dir():
            raise ValueError(f"--out {arguments.out} exists and is not a folder")
        try:
            arguments.out.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ValueError(f"--out {arguments.out} cannot be created: {error}") from error
        log = _load_log(arguments)
        config = ExperimentConfig(
            periods=arguments.periods,
            period_by=arguments.period_by,
            strategies=tuple(arguments.strategies.split(",")) if arguments.strategies else None,
            dim=arguments.dim,
            history=arguments.history,
            epochs=arguments.epochs,
            batch_size=arguments.batch_size,
            lr=arguments.lr,
            seed=arguments.seed,
        )
    except (ValueError, TypeError, KeyError, FileNotFoundError) as error:
        print(f"lfe experiment: {error}", file=sys.stderr)
        return 2

    print(f"{log!r}", file=sys.stderr)
    started = time.perf_counter()
    try:
        with _progress_bar(disabled=arguments.no_progress) as progress:
            results = run_experiment(log, config, progress=progress)
        results["wall_seconds"] = time.perf_counter() - started
        paths = write_results(results, arguments.out)
    except (ValueError, OSError) as error:  # settings the data cannot support, unwritable --out
        print(f"lfe experiment: {error}", file=sys.stderr)
        return 2

    print(_periods_summary(results))
    print()
    print("Overall (every period after the first, evaluated before training on it):")
    print(summary_table(results))
    print()
    print("AUC per period (all items / items new in that period):")
    print(periods_table(results))
    print()
    print(f"finished in {results['wall_seconds']:.0f} s; wrote " + ", ".join(map(str, paths)))
    return 0


def _check_data_options(arguments: argparse.Namespace) -> None:
    """Reject option combinations that would otherwise be silently ignored."""
    column_options = [
        ("--user-column", arguments.user_column != "user"),
        ("--item-column", arguments.item_column != "item"),
        ("--time-column", arguments.time_column != "time"),
        ("--label-column", arguments.label_column),
        ("--time-unit", arguments.time_unit),
        ("--attribute", arguments.attribute),
    ]
    if arguments.events is None:
        given = column_options + [
            ("--format", arguments.format != "events"),
            ("--item-properties", arguments.item_properties),
            ("--buys", arguments.buys),
            ("--positive-threshold", arguments.positive_threshold is not None),
        ]
        named = [name for name, value in given if value]
        if named:
            raise ValueError(f"{', '.join(named)} only apply together with --events")
        return
    if arguments.format != "events":
        named = [name for name, value in column_options if value]
        if named:
            raise ValueError(
                f"{', '.join(named)} describe a log of --format events, not {arguments.format}"
            )
    elif arguments.positive_threshold is not None and arguments.label_column is None:
        raise ValueError("--positive-threshold needs --label-column (the labels it applies to)")
    if arguments.item_properties and arguments.format != "retailrocket":
        raise ValueError("--item-properties is for --format retailrocket")
    if arguments.buys and arguments.format != "yoochoose":
        raise ValueError("--buys is for --format yoochoose")


def _load_log(arguments: argparse.Namespace):
    from lfe import datasets

    if arguments.events is None:
        return datasets.movielens_small()
    if arguments.format == "retailrocket":
        return datasets.retailrocket(
            arguments.events,
            item_properties_paths=arguments.item_properties,
            positive_threshold=arguments.positive_threshold,
        )
    if arguments.format == "yoochoose":
        return datasets.yoochoose(
            arguments.events, arguments.buys, positive_threshold=arguments.positive_threshold
        )
    return datasets.load_events(
        arguments.events,
        user=arguments.user_column,
        item=arguments.item_column,
        time=arguments.time_column,
        label=arguments.label_column,
        attributes=arguments.attribute or None,
        time_unit=arguments.time_unit,
        positive_threshold=arguments.positive_threshold,
    )


def _periods_summary(results: dict) -> str:
    parts = [
        f"p{p['period']}: {p['events']} events, {p['new_items']} new items "
        f"({p['new_item_events']} events)"
        for p in results["periods"]
    ]
    return f"{results['dataset']}, {results['num_periods']} periods: " + "; ".join(parts)


class _progress_bar:
    """A tqdm bar over the fraction of work done, with the time remaining."""

    def __init__(self, disabled: bool) -> None:
        self.disabled = disabled

    def __enter__(self):
        from tqdm import tqdm

        self.bar = tqdm(
            total=1000,
            disable=self.disabled,
            file=sys.stderr,
            unit="‰",
            bar_format="{l_bar}{bar}| {elapsed}<{remaining} {desc}",
        )
        return self.update

    def update(self, fraction: float, description: str) -> None:
        self.bar.set_description_str(description)
        self.bar.update(round(fraction * 1000) - self.bar.n)

    def __exit__(self, *exc_info) -> None:
        self.bar.close()


if __name__ == "__main__":
    sys.exit(main())
