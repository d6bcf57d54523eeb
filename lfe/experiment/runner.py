"""The incremental-catalogue experiment: replay a log period by period, test then train."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from lfe.datasets import EventLog
from lfe.experiment.metrics import auc, hit_rate_and_ndcg
from lfe.experiment.model import HistoryScorer
from lfe.experiment.periods import PreparedLog, prepare, split_periods
from lfe.experiment.strategies import RETRAIN, STATIC, Strategy, available_strategies

logger = logging.getLogger(__name__)

METRICS = ("auc", "hr@10", "ndcg@10")


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    """Settings of one experiment run. Defaults are those of `lfe experiment`."""

    periods: int = 5
    period_by: str | None = None
    strategies: tuple[str, ...] | None = None
    """Names to run; None runs every strategy the data supports."""
    dim: int = 32
    history: int = 20
    epochs: int = 2
    batch_size: int = 512
    lr: float = 0.01
    negatives: int = 99
    """Sampled negatives per positive for HR@10 and NDCG@10."""
    neighbors: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("dim", "history", "epochs", "batch_size", "negatives", "neighbors"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr!r}")
        if not isinstance(self.seed, int) or not 0 <= self.seed < 2**32:
            raise ValueError(f"seed must be an int in [0, 2**32), got {self.seed!r}")


@dataclasses.dataclass
class _Run:
    """A strategy's model and what it has produced so far."""

    strategy: Strategy
    model: HistoryScorer | None = None
    optimizers: list[torch.optim.Optimizer] = dataclasses.field(default_factory=list)
    scored: dict[str, list[torch.Tensor]] = dataclasses.field(default_factory=dict)


def run_experiment(
    log: EventLog,
    config: ExperimentConfig = ExperimentConfig(),
    progress: Callable[[float, str], None] | None = None,
) -> dict:
    """Replay `log` and return the results: per strategy and period, and overall.

    `progress(fraction_of_work, description)` is called as work completes.
    """
    torch.manual_seed(config.seed)
    period_of_event = split_periods(log, config.periods, config.period_by)
    data = prepare(log, period_of_event, config.history)
    strategies = _select_strategies(log, config)
    runs = [_Run(strategy) for strategy in strategies]

    work_done, total_work = 0.0, _total_work(data, runs, config)
    records = []
    for period in range(data.num_periods):
        negatives = _evaluation_negatives(data, period, config) if period else None
        for run in runs:
            record = {"strategy": run.strategy.name, "period": period}
            if period:
                _announce_new_items(run, data, period)
                record.update(_evaluate(run, data, period, negatives, config))
            seconds = _train(run, data, period, config)
            record["train_seconds"] = seconds
            record["table_rows"] = run.model.items.num_embeddings
            records.append(record)

            work_done += _work(data, run, period, config)
            if progress is not None:
                progress(work_done / total_work, f"period {period} {run.strategy.name}")

    return {
        "dataset": log.name,
        "config": dataclasses.asdict(config),
        "num_periods": data.num_periods,
        "periods": _describe_periods(data),
        "strategies": {s.name: s.description for s in strategies},
        "records": records,
        "overall": {run.strategy.name: _overall(run, records) for run in runs},
    }


def _select_strategies(log: EventLog, config: ExperimentConfig) -> list[Strategy]:
    available = available_strategies(log, config.neighbors)
    if config.strategies is None:
        return list(available.values())
    unknown = [name for name in config.strategies if name not in available]
    if unknown:
        raise ValueError(
            f"strategies {unknown} are not available for {log.name!r}; choose from "
            f"{list(available)}"
        )
    return [available[name] for name in config.strategies]


# ------------------------------------------------------------------------------------ training


def _new_model(run: _Run, data: PreparedLog, config: ExperimentConfig) -> None:
    generator = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)
    run.model = HistoryScorer(
        config.dim, run.strategy.make_init(), data.padding_id, generator=generator
    )
    tables = [run.model.items.weight, run.model.history.weight]
    run.optimizers = [
        torch.optim.SparseAdam(tables, lr=config.lr),
        torch.optim.Adam(run.model.dense_parameters(), lr=config.lr),
    ]


def _train(run: _Run, data: PreparedLog, period: int, config) -> float:
    """Train the run's model for the period; seconds spent."""
    start = time.perf_counter()
    if run.model is None or run.strategy.kind == RETRAIN:
        _new_model(run, data, config)
    end = data.period_slice(period).stop
    begin = 0 if run.strategy.kind == RETRAIN else data.period_slice(period).start
    events = torch.arange(begin, end)

    generator = torch.Generator().manual_seed(config.seed * 1_000_003 + period)
    run.model.train()
    for _ in range(config.epochs):
        order = events[torch.randperm(events.numel(), generator=generator)]
        for batch in order.split(config.batch_size):
            histories, history_labels, items, labels = _training_batch(data, batch, end, generator)
            logits = run.model(histories, history_labels, items)
            loss = F.binary_cross_entropy_with_logits(logits, labels)
            for optimizer in run.optimizers:
                optimizer.zero_grad()
            loss.backward()
            for optimizer in run.optimizers:
                optimizer.step()

    if run.strategy.kind == STATIC and period == 0:
        run.model.freeze_vocabulary(data.unknown_id)
    return time.perf_counter() - start


def _training_batch(data: PreparedLog, batch: torch.Tensor, seen_until: int, generator):
    histories, history_labels = data.histories[batch], data.history_labels[batch]
    items, labels = data.items[batch], data.labels[batch]
    if data.implicit:
        # Observed events are positives; as many sampled items, seen so far, are negatives.
        sampled = torch.randint(0, seen_until, (batch.numel(),), generator=generator)
        histories = torch.cat([histories, histories])
        history_labels = torch.cat([history_labels, history_labels])
        items = torch.cat([items, data.items[sampled]])
        labels = torch.cat([torch.ones_like(labels), torch.zeros_like(labels)])
    return histories, history_labels, items, labels


# ---------------------------------------------------------------------------------- evaluation


def _announce_new_items(run: _Run, data: PreparedLog, period: int) -> None:
    """Extend the tables with the period's new items, as a shop lists products before sale."""
    if run.strategy.kind == STATIC:
        return
    span = data.period_slice(period)
    new_items = torch.unique(data.items[span][data.item_is_new[span]])
    run.model.items.extend(new_items)
    run.model.history.extend(new_items)


def _evaluation_negatives(data: PreparedLog, period: int, config) -> torch.Tensor:
    """(positives of the period, negatives) items sampled from the catalogue seen so far.

    Drawn once per period, so every strategy ranks the same candidates.
    """
    span = data.period_slice(period)
    positives = int(data.labels[span].sum())
    catalogue = data.items_seen_until(period)
    generator = torch.Generator().manual_seed(config.seed * 7919 + period)
    picks = torch.randint(0, catalogue.numel(), (positives, config.negatives), generator=generator)
    return catalogue[picks]


@torch.no_grad()
def _evaluate(run: _Run, data: PreparedLog, period: int, negatives, config) -> dict:
    run.model.eval()
    span = data.period_slice(period)
    histories, history_labels = data.histories[span], data.history_labels[span]
    items, labels, is_new = data.items[span], data.labels[span], data.item_is_new[span]

    positive = labels.bool()
    candidates = torch.cat([items[positive, None], negatives], dim=1)
    candidate_scores = _in_batches(
        run.model.score_candidates, histories[positive], history_labels[positive], candidates
    )
    candidate_is_new = is_new[positive]
    if data.implicit:
        # Every event is a positive; for the AUC each is paired with its first sampled item.
        histories = torch.cat([histories, histories])
        history_labels = torch.cat([history_labels, history_labels])
        items = torch.cat([items, negatives[:, 0]])
        labels = torch.cat([labels, torch.zeros_like(labels)])
        is_new = torch.cat([is_new, is_new])
    logits = _in_batches(run.model, histories, history_labels, items)

    scored = {
        "logits": logits,
        "labels": labels,
        "is_new": is_new,
        "candidate_scores": candidate_scores,
        "candidate_is_new": candidate_is_new,
    }
    for key, value in scored.items():
        run.scored.setdefault(key, []).append(value)
    return _metrics(scored)


def _in_batches(score, histories, history_labels, items, rows_per_batch: int = 2048):
    """`score` over the events in chunks, so candidate matrices stay small."""
    size = max(1, rows_per_batch * 8 // (items.shape[1] if items.dim() > 1 else 8))
    chunks = zip(histories.split(size), history_labels.split(size), items.split(size), strict=True)
    return torch.cat([score(*chunk) for chunk in chunks])


def _metrics(scored: dict[str, torch.Tensor]) -> dict:
    result = {}
    for subset in ("all", "new"):
        events = slice(None) if subset == "all" else scored["is_new"]
        ranked = slice(None) if subset == "all" else scored["candidate_is_new"]
        hr, ndcg = hit_rate_and_ndcg(scored["candidate_scores"][ranked])
        result[f"auc_{subset}"] = auc(scored["logits"][events], scored["labels"][events])
        result[f"hr@10_{subset}"] = hr
        result[f"ndcg@10_{subset}"] = ndcg
        result[f"events_{subset}"] = int(scored["labels"][events].numel())
    return result


def _overall(run: _Run, records: list[dict]) -> dict:
    """Metrics over every evaluated event of all periods, and total training time."""
    mine = [record for record in records if record["strategy"] == run.strategy.name]
    pooled = {key: torch.cat(values) for key, values in run.scored.items()}
    result = _metrics(pooled) if pooled else {}
    result["train_seconds"] = sum(record["train_seconds"] for record in mine)
    result["table_rows"] = mine[-1]["table_rows"]
    return result


def _describe_periods(data: PreparedLog) -> list[dict]:
    described = []
    for period in range(data.num_periods):
        span = data.period_slice(period)
        described.append(
            {
                "period": period,
                "events": span.stop - span.start,
                "new_item_events": int(data.item_is_new[span].sum()),
                "new_items": int(torch.unique(data.items[span][data.item_is_new[span]]).numel()),
            }
        )
    return described


def _total_work(data: PreparedLog, runs: list[_Run], config) -> float:
    return sum(_work(data, run, p, config) for p in range(data.num_periods) for run in runs)


def _work(data: PreparedLog, run: _Run, period: int, config) -> float:
    """Events a run processes in a period (training passes plus evaluation), for progress."""
    span = data.period_slice(period)
    trained = span.stop if run.strategy.kind == RETRAIN else span.stop - span.start
    return trained * config.epochs + (span.stop - span.start if period else 0) * 2


__all__ = ["ExperimentConfig", "METRICS", "run_experiment"]
