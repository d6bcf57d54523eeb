"""Splitting an event log into time-ordered periods and preparing its tensors."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import torch

from lfe._ids import RESERVED_ID
from lfe.datasets import EventLog

PERIOD_UNITS = {"day": "D", "week": "W", "month": "M"}


def split_periods(log: EventLog, periods: int | None, period_by: str | None) -> np.ndarray:
    """int64 [len(log)]: the period of each event, 0, 1, ... in time order.

    `periods` equal-sized periods by number of events (ties in time are never split across
    two periods), or calendar periods with `period_by` in "day", "week", "month".
    """
    times = log.events["time"]
    if period_by is not None:
        if period_by not in PERIOD_UNITS:
            raise ValueError(f"period_by must be one of {sorted(PERIOD_UNITS)}, got {period_by!r}")
        calendar = times.dt.tz_localize(None).dt.to_period(PERIOD_UNITS[period_by])
        period_of_event = pd.factorize(calendar, sort=True)[0].astype(np.int64)
        return _at_least_two(period_of_event, f"period_by={period_by!r}")

    if not isinstance(periods, int) or isinstance(periods, bool) or periods < 2:
        raise ValueError(f"periods must be an int of at least 2, got {periods!r}")
    if len(times) < periods:
        raise ValueError(f"the log has {len(times)} events, fewer than periods={periods}")
    positions = np.arange(len(times))
    boundaries = times.iloc[(positions.size * np.arange(1, periods)) // periods].to_numpy()
    # An event belongs to the period whose start time it has reached. Many events at one
    # instant can leave a period empty; the remaining periods are renumbered 0, 1, ...
    period_of_event = np.searchsorted(boundaries, times.to_numpy(), side="right")
    period_of_event = np.unique(period_of_event, return_inverse=True)[1].astype(np.int64)
    return _at_least_two(period_of_event, f"periods={periods}")


def _at_least_two(period_of_event: np.ndarray, setting: str) -> np.ndarray:
    if len(period_of_event) == 0 or period_of_event.max() < 1:
        raise ValueError(
            f"{setting} puts every event into one period (events at one instant are never "
            "split); the experiment needs at least two periods"
        )
    return period_of_event


@dataclasses.dataclass(frozen=True)
class PreparedLog:
    """The tensors the experiment trains and evaluates on, one entry per event."""

    users: torch.Tensor
    items: torch.Tensor
    labels: torch.Tensor
    """1.0 for a positive interaction, 0.0 for a negative one (explicit logs only)."""
    histories: torch.Tensor
    """(events, history_length): the user's previous items, newest first, `padding_id` padded."""
    history_labels: torch.Tensor
    """(events, history_length): `labels` of those previous events (0 where padded)."""
    period: torch.Tensor
    item_is_new: torch.Tensor
    """Whether the event's item was first seen in the event's period."""
    padding_id: int
    unknown_id: int
    """An ID, neither an item nor padding, for the row a static table shares among new items."""
    num_periods: int
    implicit: bool

    def period_slice(self, period: int) -> slice:
        positions = torch.nonzero(self.period == period).squeeze(1)
        if positions.numel() == 0:
            return slice(0, 0)
        return slice(int(positions[0]), int(positions[-1]) + 1)

    def items_seen_until(self, period: int) -> torch.Tensor:
        """Distinct items of all events up to and including `period`."""
        return torch.unique(self.items[: self.period_slice(period).stop])


def prepare(log: EventLog, period_of_event: np.ndarray, history_length: int) -> PreparedLog:
    """Tensors for the experiment: labels, per-event user histories and new-item flags."""
    events = log.events
    items = events["item"].to_numpy()
    padding_id = _unused_id(items)
    unknown_id = _unused_id(np.append(items, padding_id))
    positives = log.positives()
    if not positives.any():
        threshold = log.positive_threshold
        raise ValueError(
            f"the log has no positive interaction (positive_threshold={threshold}, labels "
            f"from {log.events['label'].min()} to {log.events['label'].max()})"
        )
    users = events["user"].to_numpy()
    histories = _histories(users, items, history_length, padding_id)
    history_labels = _histories(users, positives.astype(np.int64), history_length, 0)

    first_period = pd.Series(period_of_event).groupby(items).transform("min").to_numpy()
    return PreparedLog(
        users=torch.from_numpy(events["user"].to_numpy().copy()),
        items=torch.from_numpy(items.copy()),
        labels=torch.from_numpy(positives.astype(np.float32)),
        histories=torch.from_numpy(histories),
        history_labels=torch.from_numpy(history_labels.astype(np.float32)),
        period=torch.from_numpy(period_of_event),
        item_is_new=torch.from_numpy(first_period == period_of_event),
        padding_id=padding_id,
        unknown_id=unknown_id,
        num_periods=int(period_of_event.max()) + 1,
        implicit=log.implicit,
    )


def _histories(users: np.ndarray, values: np.ndarray, length: int, padding) -> np.ndarray:
    """(events, length): for each event, `values` of the same user's previous events."""
    order = np.argsort(users, kind="stable")  # events stay in time order within a user
    sorted_users, sorted_values = users[order], values[order]
    histories = np.full((len(values), length), padding, dtype=values.dtype)
    for lag in range(1, length + 1):
        same_user = np.zeros(len(values), dtype=bool)
        same_user[lag:] = sorted_users[lag:] == sorted_users[:-lag]
        previous = np.full(len(values), padding, dtype=values.dtype)
        previous[lag:] = sorted_values[:-lag]
        histories[order, lag - 1] = np.where(same_user, previous, padding)
    return histories


def _unused_id(items: np.ndarray) -> int:
    """An ID that no item has, to pad histories with."""
    candidate = RESERVED_ID + 1
    while bool((items == candidate).any()):
        candidate += 1
    return candidate
