"""Conversion of raw file columns to the dtypes of `EventLog`, with errors that name the column.

Each converter takes the column, the loader argument that named it (`user`, `time`, ...) and
returns a numpy array or Series in the target dtype, or raises an error of the form
`user='visitorid': ...` that says what was expected and shows an offending value.
"""

from __future__ import annotations

import hashlib
import logging
import re

import numpy as np
import pandas as pd

from lfe._ids import RESERVED_ID

logger = logging.getLogger(__name__)

TIME_UNITS = ("s", "ms", "us", "ns")
INTEGER_LITERAL = re.compile(r"^\s*[+-]?\d+\s*$")
INT64_MIN, INT64_MAX = np.iinfo(np.int64).min, np.iinfo(np.int64).max


def _where(argument: str, column: str) -> str:
    return f"{argument}={column!r}"


def _example(values: pd.Series, mask: np.ndarray) -> str:
    row = int(np.flatnonzero(mask)[0])
    value = values.iloc[row]
    if isinstance(value, np.generic):
        value = value.item()  # show 1.5, not np.float64(1.5)
    return f"{value!r} (row {row}, {int(mask.sum())} such rows)"


def check_no_missing(values: pd.Series, argument: str, column: str) -> None:
    """Raise `ValueError` if the column has missing values."""
    missing = values.isna().to_numpy()
    if missing.any():
        raise ValueError(
            f"{_where(argument, column)}: {int(missing.sum())} missing values, the first in row "
            f"{int(np.flatnonzero(missing)[0])}"
        )


def string_id(text: str) -> int:
    """The int64 ID of a string ID: the first 8 bytes of its BLAKE2b digest, signed little-endian.

    The mapping depends only on the string (UTF-8), never on the file or the run, so the same
    product gets the same raw ID in every period and every file.
    """
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


def ids_to_int64(values: pd.Series, argument: str, column: str) -> np.ndarray:
    """Convert an ID column to int64 raw IDs.

    Integers are kept; floats must hold whole numbers (CSV readers turn integer columns with
    gaps into floats). Strings that are integer literals become that integer, so `"42"` and
    `42` are the same ID; any other string becomes `string_id(text)`, a stable 64-bit hash.
    """
    check_no_missing(values, argument, column)
    where = _where(argument, column)

    if pd.api.types.is_bool_dtype(values.dtype):
        raise TypeError(f"{where}: expected integer or string IDs, got dtype bool")
    if pd.api.types.is_integer_dtype(values.dtype):
        ids = _integers_to_int64(values, where)
    elif pd.api.types.is_float_dtype(values.dtype):
        ids = _floats_to_int64(values, where)
    elif pd.api.types.is_string_dtype(values.dtype) or pd.api.types.is_object_dtype(values.dtype):
        ids = _strings_to_int64(values, where)
    else:
        raise TypeError(f"{where}: expected integer or string IDs, got dtype {values.dtype}")

    reserved = ids == RESERVED_ID
    if reserved.any():
        raise ValueError(
            f"{where}: the ID {RESERVED_ID} is reserved (lfe.RESERVED_ID) and cannot be used; "
            f"found in row {int(np.flatnonzero(reserved)[0])}"
        )
    return ids


def _integers_to_int64(values: pd.Series, where: str) -> np.ndarray:
    array = values.to_numpy()
    if array.dtype == np.uint64 and (array > INT64_MAX).any():
        raise ValueError(
            f"{where}: IDs above {INT64_MAX} do not fit int64, e.g. "
            f"{_example(values, array > INT64_MAX)}"
        )
    return array.astype(np.int64)


def _floats_to_int64(values: pd.Series, where: str) -> np.ndarray:
    array = values.to_numpy(dtype=np.float64)
    # 2**63 itself is a float64 that does not fit int64, hence the strict upper bound.
    not_integral = (np.floor(array) != array) | (array < INT64_MIN) | (array >= 2.0**63)
    if not_integral.any():
        raise ValueError(
            f"{where}: expected integer-like IDs, got non-integer numbers such as "
            f"{_example(values, not_integral)}"
        )
    return array.astype(np.int64)


def _strings_to_int64(values: pd.Series, where: str) -> np.ndarray:
    codes, uniques = pd.factorize(values, sort=False)
    unique_values = np.asarray(uniques, dtype=object)
    not_strings = np.array([not isinstance(value, str) for value in unique_values], dtype=bool)
    if not_strings.any():
        example = unique_values[np.flatnonzero(not_strings)[0]]
        raise TypeError(
            f"{where}: expected integer or string IDs, got a {type(example).__name__} value "
            f"{example!r}"
        )

    unique_ids = np.empty(len(unique_values), dtype=np.int64)
    for position, text in enumerate(unique_values):
        unique_ids[position] = _string_to_int64(text)
    if len(np.unique(unique_ids)) != len(unique_ids):
        # Two distinct strings with one 64-bit hash: odds of about n**2 / 2**65.
        raise ValueError(f"{where}: two distinct string IDs map to the same int64 ID")
    return unique_ids[codes]


def _string_to_int64(text: str) -> int:
    if INTEGER_LITERAL.match(text):
        number = int(text)
        if INT64_MIN <= number <= INT64_MAX:
            return number
    return string_id(text)


def times_to_utc(
    values: pd.Series, argument: str, column: str, time_unit: str | None = None
) -> pd.Series:
    """Convert a time column to datetime64[ns, UTC].

    Numbers are epoch times in `time_unit` ("s", "ms", "us" or "ns"); without one, the unit
    is inferred from the magnitude of the largest value (below 1e11: seconds, 1e14:
    milliseconds, 1e17: microseconds, else nanoseconds), which is right for any date after
    March 1973. Strings are parsed as ISO 8601; those without an offset are taken as UTC.
    Datetime columns are converted to UTC (naive ones are taken as UTC).
    """
    check_no_missing(values, argument, column)
    where = _where(argument, column)
    if time_unit is not None and time_unit not in TIME_UNITS:
        raise ValueError(f"time_unit: expected one of {TIME_UNITS} or None, got {time_unit!r}")

    if isinstance(values.dtype, pd.DatetimeTZDtype):
        times = values.dt.tz_convert("UTC")
    elif pd.api.types.is_datetime64_dtype(values.dtype):
        times = values.dt.tz_localize("UTC")
    elif pd.api.types.is_bool_dtype(values.dtype):
        raise TypeError(f"{where}: expected epoch numbers or ISO 8601 strings, got dtype bool")
    elif pd.api.types.is_numeric_dtype(values.dtype):
        times = _epoch_to_utc(values, where, time_unit)
    elif time_unit is not None:
        numbers = pd.to_numeric(values, errors="coerce")
        bad = numbers.isna().to_numpy()
        if bad.any():
            raise ValueError(
                f"{where}: time_unit={time_unit!r} needs epoch numbers, got values such as "
                f"{_example(values, bad)}"
            )
        times = _epoch_to_utc(numbers, where, time_unit)
    else:
        times = _iso_to_utc(values, where)

    try:
        return times.astype("datetime64[ns, UTC]")
    except (OverflowError, ValueError, pd.errors.OutOfBoundsDatetime) as error:
        raise ValueError(f"{where}: times out of the datetime64[ns] range: {error}") from error


def _epoch_to_utc(numbers: pd.Series, where: str, time_unit: str | None) -> pd.Series:
    if time_unit is None:
        time_unit = _infer_time_unit(numbers)
        logger.info("%s: epoch times read as %s (pass time_unit to override)", where, time_unit)
    try:
        return pd.to_datetime(numbers, unit=time_unit, utc=True)
    except (OverflowError, ValueError, pd.errors.OutOfBoundsDatetime) as error:
        raise ValueError(
            f"{where}: epoch times in unit {time_unit!r} out of range "
            f"(largest {numbers.abs().max()!r}): {error}"
        ) from error


def _infer_time_unit(numbers: pd.Series) -> str:
    largest = float(numbers.abs().max())
    for limit, unit in ((1e11, "s"), (1e14, "ms"), (1e17, "us")):
        if largest < limit:
            return unit
    return "ns"


def _iso_to_utc(values: pd.Series, where: str) -> pd.Series:
    if pd.api.types.infer_dtype(values, skipna=False) != "string":
        not_strings = ~values.map(lambda value: isinstance(value, str)).to_numpy(dtype=bool)
        raise TypeError(
            f"{where}: expected epoch numbers or ISO 8601 strings, got {values.dtype} values "
            f"such as {_example(values, not_strings)}"
        )

    times = pd.to_datetime(values, utc=True, format="ISO8601", errors="coerce")
    bad = times.isna().to_numpy()
    if bad.any():
        hint = ""
        if INTEGER_LITERAL.match(str(values.iloc[int(np.flatnonzero(bad)[0])])):
            hint = "; for epoch times stored as text pass time_unit"
        raise ValueError(
            f"{where}: cannot parse times as ISO 8601, e.g. {_example(values, bad)}{hint}"
        )
    return times


def labels_to_float64(values: pd.Series, argument: str, column: str) -> np.ndarray:
    """Convert a label column (ratings, weights) to float64; missing or text values raise."""
    check_no_missing(values, argument, column)
    numbers = pd.to_numeric(values, errors="coerce")
    bad = numbers.isna().to_numpy()
    if bad.any():
        raise ValueError(
            f"{_where(argument, column)}: expected numeric labels, got values such as "
            f"{_example(values, bad)}"
        )
    return numbers.to_numpy(dtype=np.float64)
