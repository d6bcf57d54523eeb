"""Reading users' own event logs from CSV (plain or gzip) and Parquet files."""

from __future__ import annotations

import gzip
import logging
import os
import pathlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import pandas as pd

from lfe.datasets.attributes import item_attribute
from lfe.datasets.columns import ids_to_int64, labels_to_float64, times_to_utc
from lfe.datasets.events import EventLog

logger = logging.getLogger(__name__)

CSV_SUFFIXES = (".csv", ".csv.gz")
PARQUET_SUFFIXES = (".parquet", ".pq")

# What pandas raises for a file that is no readable CSV: bytes that are not UTF-8, rows that
# do not parse, or a .csv.gz that is not gzip.
CSV_READ_ERRORS = (UnicodeDecodeError, pd.errors.ParserError, gzip.BadGzipFile)

PathLike = str | os.PathLike
T = TypeVar("T")


def table_format(path: pathlib.Path, argument: str) -> str:
    """The format of a file from its name's suffix: "csv" or "parquet"; else `ValueError`."""
    name = path.name.lower()
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    raise ValueError(
        f"{argument}: unknown file format of {str(path)!r}; expected a name ending in "
        f"{', '.join(CSV_SUFFIXES + PARQUET_SUFFIXES)}"
    )


def existing_file(path: PathLike, argument: str) -> pathlib.Path:
    """`path` as a Path; raises `FileNotFoundError` naming `argument` if it is no file."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{argument}: no such file: {str(path)!r}")
    return path


def table_columns(path: pathlib.Path, argument: str) -> list[str]:
    """The column names of a CSV or Parquet file, read without reading its rows."""
    if table_format(path, argument) == "parquet":
        return list(_read_parquet(path, argument, lambda parquet: parquet.read_schema(path).names))
    try:
        return list(pd.read_csv(path, nrows=0).columns)
    except pd.errors.EmptyDataError as error:
        raise ValueError(f"{argument}: the file {str(path)!r} is empty (no header)") from error
    except CSV_READ_ERRORS as error:
        raise _not_csv(path, argument, error) from error


def read_table(path: pathlib.Path, argument: str, columns: Sequence[str]) -> pd.DataFrame:
    """Read `columns` of a CSV or Parquet file; raises `ValueError` if it has no rows.

    A file that cannot be read in the format its name says (not UTF-8 text, malformed CSV,
    not Parquet) raises `ValueError` naming `argument` and the file, caused by the reader's
    own error.
    """
    if table_format(path, argument) == "parquet":
        table = _read_parquet(
            path, argument, lambda parquet: parquet.read_table(path, columns=list(columns))
        ).to_pandas()
    else:
        try:
            table = pd.read_csv(path, usecols=list(columns))
        except CSV_READ_ERRORS as error:
            raise _not_csv(path, argument, error) from error
    if table.empty:
        raise ValueError(f"{argument}: the file {str(path)!r} has a header but no rows")
    return table


def _not_csv(path: pathlib.Path, argument: str, error: Exception) -> ValueError:
    if isinstance(error, UnicodeDecodeError):
        expected = "UTF-8 text"
    elif isinstance(error, gzip.BadGzipFile):
        expected = "a gzip-compressed CSV file"
    else:
        expected = "a CSV file with a header row and the same number of fields in every row"
    return ValueError(
        f"{argument}: cannot read {str(path)!r} as CSV; expected {expected}, but reading it "
        f"failed with: {error}"
    )


def _read_parquet(path: pathlib.Path, argument: str, read: Callable[[Any], T]) -> T:
    """`read(pyarrow.parquet)`, with pyarrow's errors raised as a `ValueError` naming the file."""
    parquet = _parquet_module(argument)
    import pyarrow  # importable: _parquet_module has just imported pyarrow.parquet

    try:
        return read(parquet)
    except pyarrow.ArrowException as error:
        raise ValueError(
            f"{argument}: cannot read {str(path)!r} as Parquet; expected a Parquet file (its "
            f"name says so), but reading it failed with: {error}"
        ) from error


def _parquet_module(argument: str):
    try:
        import pyarrow.parquet
    except ImportError as error:
        raise ImportError(
            f"{argument}: reading Parquet needs pyarrow; install it with "
            "`pip install pyarrow` (or `pip install lfe[parquet]`)"
        ) from error
    return pyarrow.parquet


def load_events(
    path: PathLike,
    *,
    user: str = "user",
    item: str = "item",
    time: str = "time",
    label: str | None = None,
    attributes: Sequence[str] | Mapping[str, str] | None = None,
    attribute_separator: str | None = "|",
    time_unit: str | None = None,
    implicit: bool | None = None,
    positive_threshold: float | None = None,
    name: str | None = None,
) -> EventLog:
    """Load an interaction log from a CSV (`.csv`, `.csv.gz`) or Parquet (`.parquet`) file.

    Args:
        path: the file; its suffix decides the format.
        user, item: the ID columns. Integer IDs are kept as they are (the raw IDs lfe maps
            to rows); whole floats are accepted; strings that are integer literals become
            that integer, any other string a stable 64-bit hash of its UTF-8 text
            (`lfe.datasets.columns.string_id`), the same in every file and run.
        time: the time column: epoch numbers (see `time_unit`), ISO 8601 strings (taken
            as UTC unless they carry an offset) or a datetime column.
        label: a numeric column with the rating or weight of each event; None gives every
            event the label 1.0.
        attributes: item attribute columns: a list of column names (each attribute named
            after its column) or a mapping attribute name -> column. An item's value is
            its latest non-missing one.
        attribute_separator: splits an attribute value into several ("Comedy|Drama");
            None keeps each value whole.
        time_unit: "s", "ms", "us" or "ns" for epoch times; None infers it from the
            magnitude of the values (right for any date after March 1973).
        implicit: whether the log is implicit feedback; None means `label is None`.
        positive_threshold: labels at or above it are positives (e.g. 4.0 for 5-star
            ratings); None counts every label above zero.
        name: the log's name in reports; defaults to the file name without its suffixes.

    Raises:
        FileNotFoundError: `path` is no file.
        ValueError: unknown suffix, a file that cannot be read in the format its suffix
            names (not UTF-8, malformed CSV, not Parquet), empty file or no rows, a column
            that is missing (the message lists the available ones), unparseable times,
            non-numeric labels, missing or non-integer IDs.
        TypeError: ID or time columns of a type that cannot hold IDs or times.
    """
    path = existing_file(path, "path")
    attribute_columns = _attribute_columns(attributes)
    requested = {"user": user, "item": item, "time": time}
    if label is not None:
        requested["label"] = label
    requested.update({f"attributes[{key!r}]": column for key, column in attribute_columns.items()})

    available = table_columns(path, "path")
    for argument, column in requested.items():
        if column not in available:
            raise ValueError(
                f"{argument}={column!r}: no such column in {str(path)!r}; available columns: "
                f"{available}"
            )
    table = read_table(path, "path", list(dict.fromkeys(requested.values())))

    events = pd.DataFrame(
        {
            "user": ids_to_int64(table[user], "user", user),
            "item": ids_to_int64(table[item], "item", item),
            "time": times_to_utc(table[time], "time", time, time_unit).reset_index(drop=True),
            "label": 1.0 if label is None else labels_to_float64(table[label], "label", label),
        }
    )
    # Sort once here so that "latest value" below means latest in time.
    order = events["time"].argsort(kind="stable").to_numpy()
    events = events.iloc[order].reset_index(drop=True)
    item_attributes = {
        key: item_attribute(
            events["item"].to_numpy(),
            table[column].iloc[order],
            separator=attribute_separator,
            keep="last",
        )
        for key, column in attribute_columns.items()
    }

    log = EventLog.from_frame(
        events,
        name=name if name is not None else path.name.split(".")[0],
        implicit=label is None if implicit is None else implicit,
        item_attributes=item_attributes,
        positive_threshold=positive_threshold,
    )
    logger.info("loaded %r from %s", log, path)
    return log


def _attribute_columns(attributes: Sequence[str] | Mapping[str, str] | None) -> dict[str, str]:
    if attributes is None:
        return {}
    if isinstance(attributes, str):
        raise TypeError(
            f"attributes: expected a list of column names or a mapping, got the string "
            f"{attributes!r}; write [{attributes!r}]"
        )
    if isinstance(attributes, Mapping):
        return dict(attributes)
    return {column: column for column in attributes}
