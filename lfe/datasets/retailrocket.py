"""Loader for the RetailRocket e-commerce data set (Kaggle "Retailrocket recommender system
dataset"): `events.csv` and `item_properties_part1.csv` / `item_properties_part2.csv`."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from lfe.datasets.attributes import item_attribute
from lfe.datasets.columns import ids_to_int64, times_to_utc
from lfe.datasets.events import EventLog
from lfe.datasets.files import PathLike, existing_file, table_columns

logger = logging.getLogger(__name__)

EVENT_TYPES = ("view", "addtocart", "transaction")
EVENTS_COLUMNS = ("timestamp", "visitorid", "event", "itemid")
PROPERTIES_COLUMNS = ("timestamp", "itemid", "property", "value")
CATEGORY_PROPERTY = "categoryid"
# The property files hold about 20 million rows of which some 0.8 million are categories,
# so they are read in chunks and filtered, never held whole.
PROPERTIES_CHUNK_ROWS = 2_000_000


def retailrocket(
    events_path: PathLike,
    item_properties_paths: Sequence[PathLike] = (),
    *,
    event_weights: Mapping[str, float] | None = None,
    positive_threshold: float | None = None,
    name: str = "retailrocket",
) -> EventLog:
    """Load the RetailRocket log: views, add-to-carts and transactions of a real shop.

    Args:
        events_path: `events.csv` with the columns timestamp (epoch milliseconds),
            visitorid, event ("view", "addtocart" or "transaction"), itemid and
            transactionid (unused).
        item_properties_paths: `item_properties_part1.csv` and `item_properties_part2.csv`
            (timestamp, itemid, property, value). The property "categoryid" gives the
            item attribute "category": each item's latest value over all the files. The
            value is the latest in the snapshot, not the one in force at each event.
            Without these files the log has no attributes.
        event_weights: the label of each event type; types left out are dropped, so
            `{"transaction": 1.0}` keeps purchases only. Default: all three with 1.0.
        positive_threshold: passed to `EventLog` (None: every kept event is a positive).
        name: the log's name in reports.

    Returns:
        An implicit `EventLog`: user = visitorid, item = itemid (the shop's raw IDs).
    """
    events_path = existing_file(events_path, "events_path")
    weights = dict(event_weights) if event_weights is not None else dict.fromkeys(EVENT_TYPES, 1.0)
    unknown = sorted(set(weights) - set(EVENT_TYPES))
    if unknown or not weights:
        raise ValueError(
            f"event_weights: expected weights for some of {list(EVENT_TYPES)}, got {weights}"
        )

    table = _read_csv_columns(events_path, "events_path", EVENTS_COLUMNS)
    # Weights are looked up once per distinct event type, not once per row.
    event_codes, event_types = pd.factorize(table["event"])
    type_weights = np.array([weights.get(event, np.nan) for event in event_types])
    labels = type_weights[event_codes] if len(event_types) else np.empty(0)
    kept = ~np.isnan(labels)
    if not kept.any():
        raise ValueError(f"events_path: no events of the types {sorted(weights)}")
    logger.info("retailrocket: kept %d of %d events (%s)", kept.sum(), len(table), sorted(weights))
    table = table[kept].reset_index(drop=True)

    events = pd.DataFrame(
        {
            "user": _integer_ids(table["visitorid"], "visitorid", events_path),
            "item": _integer_ids(table["itemid"], "itemid", events_path),
            "time": times_to_utc(table["timestamp"], "events_path", "timestamp", "ms"),
            "label": labels[kept],
        }
    )
    item_attributes = {}
    if item_properties_paths:
        item_attributes["category"] = _latest_categories(item_properties_paths)

    return EventLog.from_frame(
        events,
        name=name,
        implicit=True,
        item_attributes=item_attributes,
        positive_threshold=positive_threshold,
    )


def _latest_categories(paths: Sequence[PathLike]) -> pd.Series:
    if isinstance(paths, (str, bytes)) or not isinstance(paths, Sequence):
        raise TypeError(
            f"item_properties_paths: expected a list of paths, got {type(paths).__name__}"
        )

    chunks = []
    for position, path in enumerate(paths):
        argument = f"item_properties_paths[{position}]"
        path = existing_file(path, argument)
        _check_columns(path, argument, PROPERTIES_COLUMNS)
        reader = pd.read_csv(
            path,
            usecols=list(PROPERTIES_COLUMNS),
            dtype={"property": str, "value": str},
            chunksize=PROPERTIES_CHUNK_ROWS,
        )
        for chunk in reader:
            chunks.append(chunk[chunk["property"] == CATEGORY_PROPERTY])

    categories = pd.concat(chunks, ignore_index=True) if chunks else pd.DataFrame()
    if categories.empty:
        logger.warning("retailrocket: the item properties hold no %r rows", CATEGORY_PROPERTY)
        return item_attribute(np.empty(0, dtype=np.int64), pd.Series([], dtype=object))
    categories = categories.sort_values("timestamp", kind="stable", ignore_index=True)
    return item_attribute(
        _integer_ids(categories["itemid"], "itemid", "item_properties_paths"),
        categories["value"],
        separator=None,
        keep="last",
    )


def _read_csv_columns(path, argument: str, columns: Sequence[str]) -> pd.DataFrame:
    _check_columns(path, argument, columns)
    table = pd.read_csv(path, usecols=list(columns))
    if table.empty:
        raise ValueError(f"{argument}: the file {str(path)!r} has a header but no rows")
    return table


def _check_columns(path, argument: str, columns: Sequence[str]) -> None:
    available = table_columns(path, argument)
    missing = [column for column in columns if column not in available]
    if missing:
        raise ValueError(
            f"{argument}: {str(path)!r} lacks the columns {missing} of the RetailRocket "
            f"format; available columns: {available}"
        )


def _integer_ids(values: pd.Series, column: str, path) -> np.ndarray:
    # The public files hold integer IDs only: text here means a different or damaged file,
    # which string hashing would silently hide.
    if not pd.api.types.is_integer_dtype(values.dtype):
        raise ValueError(
            f"{column!r} in {str(path)!r}: expected integer IDs as in the RetailRocket files, "
            f"got dtype {values.dtype} (first value {values.iloc[0]!r})"
        )
    return ids_to_int64(values, column, column)
