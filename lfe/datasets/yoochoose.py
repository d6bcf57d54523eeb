"""Loader for the YooChoose data of the RecSys Challenge 2015: `yoochoose-clicks.dat` and
`yoochoose-buys.dat` (comma separated, no header)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lfe.datasets.attributes import item_attribute
from lfe.datasets.columns import ids_to_int64, times_to_utc
from lfe.datasets.events import EventLog
from lfe.datasets.files import PathLike, existing_file

CLICK_COLUMNS = ("session", "timestamp", "item", "category")
BUY_COLUMNS = ("session", "timestamp", "item", "price", "quantity")
# Category codes 1..12 are real categories; longer numbers (8 to 10 digits) are brands.
LARGEST_CATEGORY = 12


def yoochoose(
    clicks_path: PathLike,
    buys_path: PathLike | None = None,
    *,
    click_weight: float = 1.0,
    buy_weight: float = 1.0,
    positive_threshold: float | None = None,
    nrows: int | None = None,
    name: str = "yoochoose",
) -> EventLog:
    """Load the YooChoose click (and buy) log of the RecSys Challenge 2015.

    Args:
        clicks_path: `yoochoose-clicks.dat` (or `yoochoose-test.dat`): session ID, ISO 8601
            time, item ID, category; comma separated, no header.
        buys_path: `yoochoose-buys.dat`: session ID, time, item ID, price, quantity. Buys
            become events too, with the label `buy_weight`.
        click_weight, buy_weight: the labels of clicks and buys.
        positive_threshold: passed to `EventLog` (None: every event is a positive).
        nrows: read only the first `nrows` lines of each file (for quick runs; the full
            clicks file has about 33 million).
        name: the log's name in reports.

    Returns:
        An implicit `EventLog` whose users are sessions (YooChoose has no user IDs) and
        whose items are the shop's item IDs. The category column of the clicks gives two
        attributes, each holding every distinct value seen for the item: "category" (the
        codes 1 to 12) and "brand" (the 8 to 10 digit brand codes). The codes "0"
        (unknown) and "S" (clicked within a special offer: a context of the click, not a
        property of the item) are dropped.
    """
    clicks_path = existing_file(clicks_path, "clicks_path")
    clicks = _read_dat(clicks_path, "clicks_path", CLICK_COLUMNS, {"category": str}, nrows)
    frames = [_events(clicks, clicks_path, "clicks_path", click_weight)]
    if buys_path is not None:
        buys_path = existing_file(buys_path, "buys_path")
        buys = _read_dat(buys_path, "buys_path", BUY_COLUMNS, {}, nrows)
        frames.append(_events(buys, buys_path, "buys_path", buy_weight))
    # Clicks come first so that a buy at the same instant as a click sorts after it.
    events = pd.concat(frames, ignore_index=True)

    # Classify each distinct code once: "0" (unknown) and "S" (special offer) are neither a
    # category nor a brand.
    code_positions, codes = pd.factorize(clicks["category"])
    numbers = pd.to_numeric(pd.Series(codes), errors="coerce").to_numpy()
    item_ids = frames[0]["item"].to_numpy()
    item_attributes = {}
    for attribute, is_kind in (
        ("category", (numbers >= 1) & (numbers <= LARGEST_CATEGORY)),
        ("brand", numbers > LARGEST_CATEGORY),
    ):
        kept_codes = pd.Series(np.asarray(codes, dtype=object)).where(is_kind)
        row_codes = kept_codes.to_numpy()[code_positions] if len(codes) else []
        item_attributes[attribute] = item_attribute(
            item_ids, pd.Series(row_codes, dtype=object), separator=None, keep="all"
        )

    return EventLog.from_frame(
        events,
        name=name,
        implicit=True,
        item_attributes=item_attributes,
        positive_threshold=positive_threshold,
    )


def _read_dat(
    path, argument: str, columns: tuple[str, ...], dtypes: dict, nrows: int | None
) -> pd.DataFrame:
    try:
        table = pd.read_csv(
            path, header=None, names=list(columns), dtype=dtypes, nrows=nrows, index_col=False
        )
    except pd.errors.EmptyDataError as error:
        raise ValueError(f"{argument}: the file {str(path)!r} is empty") from error
    except pd.errors.ParserError as error:
        raise ValueError(
            f"{argument}: {str(path)!r} is not in the YooChoose format "
            f"({', '.join(columns)}; comma separated, no header): {error}"
        ) from error
    if table.empty:
        raise ValueError(f"{argument}: the file {str(path)!r} is empty: no rows")
    if table[list(columns)].isna().all(axis=0).any():
        raise ValueError(
            f"{argument}: {str(path)!r} has fewer than the {len(columns)} columns of the "
            f"YooChoose format ({', '.join(columns)}; comma separated, no header)"
        )
    return table


def _events(table: pd.DataFrame, path, argument: str, weight: float) -> pd.DataFrame:
    for column in ("session", "item"):
        if not pd.api.types.is_integer_dtype(table[column].dtype):
            # A header line or a different file: text IDs would otherwise be hashed silently.
            raise ValueError(
                f"{argument}: expected integer {column} IDs in {str(path)!r} (YooChoose files "
                f"have no header), got values such as {table[column].iloc[0]!r}"
            )
    return pd.DataFrame(
        {
            "user": ids_to_int64(table["session"], argument, "session"),
            "item": ids_to_int64(table["item"], argument, "item"),
            "time": times_to_utc(table["timestamp"], argument, "timestamp"),
            "label": np.full(len(table), weight, dtype=np.float64),
        }
    )
