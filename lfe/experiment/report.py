"""Writing experiment results: a terminal table, JSON, CSV and a plot."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

SUMMARY_COLUMNS = (
    ("auc_all", "AUC all"),
    ("auc_new", "AUC new"),
    ("hr@10_all", "HR@10 all"),
    ("hr@10_new", "HR@10 new"),
    ("ndcg@10_all", "NDCG@10 all"),
    ("ndcg@10_new", "NDCG@10 new"),
    ("train_seconds", "train s"),
    ("table_rows", "rows"),
)


def summary_table(results: dict) -> str:
    """The overall results as a Markdown table (readable on a terminal, pastable in a README)."""
    header = ["strategy"] + [title for _, title in SUMMARY_COLUMNS]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for strategy, overall in results["overall"].items():
        cells = [strategy] + [_format(overall.get(key), key) for key, _ in SUMMARY_COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def periods_table(results: dict) -> str:
    """Per-period AUC on all and on new items, one row per strategy, as Markdown."""
    evaluated = sorted({r["period"] for r in results["records"] if "auc_all" in r})
    header = ["strategy"] + [f"p{p} all / new" for p in evaluated]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for strategy in results["overall"]:
        cells = [strategy]
        for period in evaluated:
            record = _record(results, strategy, period)
            cells.append(f"{_format(record['auc_all'])} / {_format(record['auc_new'])}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_results(results: dict, out_dir: Path) -> list[Path]:
    """Write results.json, results.csv and results.png into `out_dir`; the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, csv_path, plot_path = (
        out_dir / "results.json",
        out_dir / "results.csv",
        out_dir / "results.png",
    )
    json_path.write_text(json.dumps(_json_safe(results), indent=2) + "\n")
    _write_csv(results, csv_path)
    _plot(results, plot_path)
    return [json_path, csv_path, plot_path]


def _write_csv(results: dict, path: Path) -> None:
    columns = sorted({key for record in results["records"] for key in record})
    columns.sort(key=lambda key: (key not in ("strategy", "period"), key))
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(results["records"])


def _plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    evaluated = sorted({r["period"] for r in results["records"] if "auc_all" in r})
    figure, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=False)
    for axis, subset in zip(axes, ("all", "new"), strict=True):
        for strategy in results["overall"]:
            values = [_record(results, strategy, p)[f"auc_{subset}"] for p in evaluated]
            axis.plot(evaluated, values, marker="o", label=strategy)
        axis.set_title(f"AUC on {'all interactions' if subset == 'all' else 'new items'}")
        axis.set_xlabel("period (evaluated before training on it)")
        axis.set_xticks(evaluated)
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("AUC")
    axes[1].legend(fontsize=8, loc="best")
    figure.suptitle(f"lfe experiment on {results['dataset']}")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def _record(results: dict, strategy: str, period: int) -> dict:
    for record in results["records"]:
        if record["strategy"] == strategy and record["period"] == period:
            return record
    raise KeyError((strategy, period))


def _format(value, key: str = "") -> str:
    if value is None:
        return "-"
    if key == "table_rows":
        return str(int(value))
    if key == "train_seconds":
        return f"{value:.1f}"
    if isinstance(value, float) and math.isnan(value):
        return "n/a"
    return f"{value:.4f}"


def _json_safe(value):
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    if isinstance(value, float) and math.isnan(value):
        return None
    return value
