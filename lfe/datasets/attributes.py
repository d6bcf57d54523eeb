"""Building the multi-valued item attributes of an `EventLog` from raw per-row values."""

from __future__ import annotations

from collections.abc import Collection
from typing import Literal

import numpy as np
import pandas as pd


def values_as_text(values: pd.Series) -> pd.Series:
    """Values as str, with whole floats written as integers (CSV gaps turn 3 into 3.0)."""
    if pd.api.types.is_float_dtype(values.dtype):
        finite = values.dropna()
        if (np.floor(finite) == finite).all():
            values = values.astype("Int64")
    return values.astype("string").astype(object).where(values.notna(), None)


def item_attribute(
    item_ids: np.ndarray,
    raw_values: pd.Series,
    *,
    separator: str | None = "|",
    keep: Literal["last", "all"] = "last",
    ignore: Collection[str] = (),
) -> pd.Series:
    """Collect one attribute per item from rows of (item ID, raw value).

    Args:
        item_ids: int64 `[rows]`, the item of each row.
        raw_values: `[rows]`, the attribute on that row: a str (split on `separator` into
            several values unless `separator` is None), a number, a list-like (list, tuple or
            numpy array, as Parquet list columns give; its elements are the values, never
            split; empty means missing), or missing.
        keep: "last" takes each item's last row with a non-missing value (rows in time
            order: its latest value); "all" takes every distinct value of all its rows.
        ignore: values that mean "unknown" and are dropped (e.g. "0", "(no genres listed)").

    Returns:
        Series indexed by item ID (int64, ascending, named "item") of non-empty tuples of
        str, each value once, in the order met. Items left without a value are absent.
    """
    if keep not in ("last", "all"):
        raise ValueError(f"keep: expected 'last' or 'all', got {keep!r}")

    # Reduce to one row per item (or per distinct item and value) before any string work,
    # which costs far more per row than the deduplication.
    rows = pd.DataFrame(
        {
            "item": np.asarray(item_ids, dtype=np.int64),
            "value": _lists_as_tuples(pd.Series(raw_values).reset_index(drop=True)),
        }
    )
    rows = rows.dropna(subset=["value"])
    if keep == "last":
        rows = rows.drop_duplicates("item", keep="last")
    else:
        rows = rows.drop_duplicates(["item", "value"], keep="first")

    listed = rows["value"].map(lambda value: isinstance(value, tuple)).to_numpy(dtype=bool)
    if listed.any():
        rows = pd.concat([_text_values(rows[~listed], separator), _list_elements(rows[listed])])
        rows = rows.sort_index(kind="stable")  # back to row order, elements in list order
    else:
        rows = _text_values(rows, separator)
    rows["value"] = rows["value"].str.strip()
    rows = rows[(rows["value"] != "") & ~rows["value"].isin(list(ignore))]
    rows = rows.drop_duplicates(["item", "value"])

    return _tuples_by_item(rows["item"].to_numpy(), rows["value"].tolist())


def _lists_as_tuples(values: pd.Series) -> pd.Series:
    """List-like cells as tuples of their non-missing elements, or None when none are left.

    Tuples are hashable, so such rows deduplicate like scalar ones.
    """
    if values.dtype != object or pd.api.types.infer_dtype(values, skipna=True) == "string":
        return values

    def as_tuple(value):
        if not isinstance(value, (list, tuple, np.ndarray)):
            return value
        elements = tuple(
            element
            for element in value
            if not (pd.api.types.is_scalar(element) and pd.isna(element))
        )
        return elements or None

    return values.map(as_tuple)


def _text_values(rows: pd.DataFrame, separator: str | None) -> pd.DataFrame:
    """Rows of scalar values as text, split on `separator`: one row per value."""
    rows = rows.assign(value=values_as_text(rows["value"]))
    if separator is not None:
        rows["value"] = rows["value"].str.split(separator, regex=False)
        rows = rows.explode("value")
    return rows


def _list_elements(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows of tuple values exploded, one row per element, as text."""
    rows = rows.explode("value")
    return rows.assign(value=values_as_text(rows["value"].infer_objects()))


def _tuples_by_item(item_ids: np.ndarray, values: list[str]) -> pd.Series:
    if len(item_ids) == 0:
        return pd.Series([], index=pd.Index([], dtype=np.int64, name="item"), dtype=object)

    # A groupby(...).agg(tuple) runs Python per group through pandas (about 70 us each);
    # slicing one list at the group boundaries costs well under a microsecond per item.
    order = np.argsort(item_ids, kind="stable")
    item_ids = item_ids[order]
    values = np.asarray(values, dtype=object)[order].tolist()
    starts = np.flatnonzero(np.r_[True, item_ids[1:] != item_ids[:-1]])
    ends = np.r_[starts[1:], len(item_ids)]

    tuples = [
        tuple(values[start:end]) for start, end in zip(starts.tolist(), ends.tolist(), strict=True)
    ]
    index = pd.Index(item_ids[starts], dtype=np.int64, name="item")
    return pd.Series(tuples, index=index, dtype=object)
