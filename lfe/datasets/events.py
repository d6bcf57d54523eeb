"""`EventLog`: the interaction log the experiment replays, whatever file it came from."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np
import pandas as pd

EVENT_COLUMNS = ("user", "item", "time", "label")
EVENT_DTYPES = {
    "user": np.dtype("int64"),
    "item": np.dtype("int64"),
    "time": pd.DatetimeTZDtype("ns", "UTC"),
    "label": np.dtype("float64"),
}


@dataclasses.dataclass(frozen=True)
class AttributeCodes:
    """One multi-valued item attribute in compressed sparse row form.

    The values of item `item_ids[i]` are `vocabulary[codes[indptr[i]:indptr[i + 1]]]`.
    All arrays are numpy (`torch.from_numpy` wraps them without a copy).

    Attributes:
        item_ids: int64 `[num_items]`, the raw IDs of the items with at least one value,
            ascending.
        indptr: int64 `[num_items + 1]`, offsets into `codes`; `indptr[0] == 0`.
        codes: int64 `[num_values]`, positions in `vocabulary`.
        vocabulary: the distinct values, sorted, as an object array of str.
    """

    item_ids: np.ndarray
    indptr: np.ndarray
    codes: np.ndarray
    vocabulary: np.ndarray

    @property
    def counts(self) -> np.ndarray:
        """int64 `[num_items]`: how many values each item has."""
        return np.diff(self.indptr)

    def segment_ids(self) -> np.ndarray:
        """int64 `[num_values]`: the position in `item_ids` of each entry of `codes`."""
        return np.repeat(np.arange(len(self.item_ids), dtype=np.int64), self.counts)


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class EventLog:
    """An interaction log: who interacted with which item, when, and how strongly.

    Build one with `EventLog.from_frame`, `lfe.datasets.load_events` or a loader of a public
    data set; the constructor only checks that its inputs already hold the invariants below.

    Attributes:
        events: one row per interaction with the columns `user` (int64), `item` (int64),
            `time` (datetime64[ns, UTC]) and `label` (float64: an explicit rating, or a
            weight such as 1.0 for implicit events); sorted by time (stable, so events at
            the same instant keep the order of the source file), index `0..n-1`. IDs are
            the raw IDs of the data (any int64 except `lfe.RESERVED_ID`).
        item_attributes: attribute name -> Series indexed by item ID (int64, unique) whose
            values are non-empty tuples of str (multi-valued: a film has several genres).
            Items without a known value are absent from the Series; the Series may cover
            items that never occur in `events` (a catalogue that lists more than was
            clicked).
        name: a short name for reports and file names.
        implicit: True for click or purchase logs, whose label carries no negative signal.
        positive_threshold: a label at or above it counts as a positive interaction; None
            means every label above zero does.
    """

    events: pd.DataFrame
    item_attributes: Mapping[str, pd.Series]
    name: str
    implicit: bool
    positive_threshold: float | None = None

    def __post_init__(self) -> None:
        _check_events(self.events)
        for attribute_name, values in self.item_attributes.items():
            _check_attribute(attribute_name, values)
        object.__setattr__(self, "item_attributes", dict(self.item_attributes))

    @classmethod
    def from_frame(
        cls,
        events: pd.DataFrame,
        *,
        name: str,
        implicit: bool,
        item_attributes: Mapping[str, pd.Series] | None = None,
        positive_threshold: float | None = None,
    ) -> EventLog:
        """Sort a frame with clean `user`, `item`, `time`, `label` columns and wrap it.

        The columns are cast to the dtypes of `EventLog.events` (which must be lossless:
        int64 IDs, float labels, UTC times); extra columns are dropped. Rows are sorted by
        time with a stable sort, so ties keep their order in `events`.
        """
        missing = [column for column in EVENT_COLUMNS if column not in events.columns]
        if missing:
            raise ValueError(f"events: missing columns {missing}; got {list(events.columns)}")

        frame = events.loc[:, list(EVENT_COLUMNS)].astype(EVENT_DTYPES)
        if not frame["time"].is_monotonic_increasing:
            # Sorting the int64 nanoseconds is several times faster than sorting the column.
            order = np.argsort(frame["time"].array.asi8, kind="stable")
            frame = frame.take(order)
        frame = frame.reset_index(drop=True)
        return cls(
            events=frame,
            item_attributes=dict(item_attributes or {}),
            name=name,
            implicit=implicit,
            positive_threshold=positive_threshold,
        )

    def __len__(self) -> int:
        return len(self.events)

    def __repr__(self) -> str:
        if len(self.events):
            first, last = self.events["time"].iloc[[0, -1]]
            span = f"{first:%Y-%m-%d}..{last:%Y-%m-%d}"
        else:
            span = "empty"
        return (
            f"EventLog(name={self.name!r}, events={len(self.events)}, users={self.num_users}, "
            f"items={self.num_items}, time={span}, implicit={self.implicit}, "
            f"positive_threshold={self.positive_threshold}, "
            f"attributes={sorted(self.item_attributes)})"
        )

    @property
    def num_users(self) -> int:
        """Number of distinct users in `events`."""
        return int(self.events["user"].nunique())

    @property
    def num_items(self) -> int:
        """Number of distinct items in `events` (items only listed in attributes excluded)."""
        return int(self.events["item"].nunique())

    def positives(self) -> np.ndarray:
        """bool `[len(events)]`: which events are positive interactions.

        `label >= positive_threshold` when a threshold is set, else `label > 0`.
        """
        labels = self.events["label"].to_numpy()
        if self.positive_threshold is None:
            return labels > 0
        return labels >= self.positive_threshold

    def first_seen(self) -> pd.Series:
        """The time of each item's first event: Series indexed by item ID, in time order."""
        first_events = self.events.drop_duplicates("item")
        return first_events.set_index("item")["time"].rename("first_seen")

    def attribute_codes(self, name: str) -> AttributeCodes:
        """The attribute `name` as integer codes in CSR form, ready for segment operations.

        Items are ordered by ID and the vocabulary is sorted, so the result depends only on
        the attribute's content. Raises `KeyError` listing the known attributes.
        """
        if name not in self.item_attributes:
            raise KeyError(
                f"name: no item attribute {name!r} in {self.name!r}; "
                f"available: {sorted(self.item_attributes)}"
            )

        values = self.item_attributes[name].sort_index()
        counts = values.map(len).to_numpy(dtype=np.int64)
        flat = values.explode().to_numpy(dtype=object)
        vocabulary, codes = np.unique(flat.astype(str), return_inverse=True)

        indptr = np.zeros(len(values) + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        return AttributeCodes(
            item_ids=values.index.to_numpy(dtype=np.int64),
            indptr=indptr,
            codes=codes.astype(np.int64).reshape(-1),
            vocabulary=vocabulary.astype(object),
        )


def _check_events(events: pd.DataFrame) -> None:
    if not isinstance(events, pd.DataFrame):
        raise TypeError(f"events: expected a pandas DataFrame, got {type(events).__name__}")
    if tuple(events.columns) != EVENT_COLUMNS:
        raise ValueError(
            f"events: expected the columns {list(EVENT_COLUMNS)}, got {list(events.columns)}; "
            "EventLog.from_frame selects and casts them"
        )
    wrong_dtypes = {
        column: str(events[column].dtype)
        for column, dtype in EVENT_DTYPES.items()
        if events[column].dtype != dtype
    }
    if wrong_dtypes:
        expected = {column: str(dtype) for column, dtype in EVENT_DTYPES.items()}
        raise TypeError(f"events: expected dtypes {expected}, got {wrong_dtypes}")
    if not events["time"].is_monotonic_increasing:
        raise ValueError("events: rows must be sorted by time; EventLog.from_frame sorts them")
    if not isinstance(events.index, pd.RangeIndex) or events.index.start != 0:
        raise ValueError("events: the index must be 0..n-1 (reset_index(drop=True))")


def _check_attribute(name: str, values: pd.Series) -> None:
    if not isinstance(values, pd.Series):
        raise TypeError(f"item_attributes[{name!r}]: expected a Series, got {type(values)}")
    if values.index.dtype != np.int64 or not values.index.is_unique:
        raise ValueError(f"item_attributes[{name!r}]: the index must be unique int64 item IDs")
    if not all(isinstance(value, tuple) and value for value in values.to_numpy()):
        raise ValueError(f"item_attributes[{name!r}]: every value must be a non-empty tuple")
