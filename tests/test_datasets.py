"""Tests of lfe.datasets: the bundled MovieLens log, load_events and the public-format loaders."""

from __future__ import annotations

import gzip
import re

import numpy as np
import pandas as pd
import pytest

from lfe import RESERVED_ID
from lfe.datasets import EventLog, load_events, movielens_small, retailrocket, string_id, yoochoose

EXPECTED_DTYPES = {
    "user": "int64",
    "item": "int64",
    "time": "datetime64[ns, UTC]",
    "label": "float64",
}


def assert_event_log_schema(log: EventLog) -> None:
    assert list(log.events.columns) == list(EXPECTED_DTYPES)
    assert {column: str(dtype) for column, dtype in log.events.dtypes.items()} == EXPECTED_DTYPES
    assert log.events["time"].is_monotonic_increasing
    assert log.events.index.equals(pd.RangeIndex(len(log.events)))
    for values in log.item_attributes.values():
        assert values.index.dtype == np.int64 and values.index.is_unique
        assert all(isinstance(value, tuple) and value for value in values)


@pytest.fixture(scope="module")
def movielens() -> EventLog:
    return movielens_small()


# The bundled MovieLens data


def test_movielens_counts(movielens):
    assert len(movielens) == 100_004
    assert movielens.num_users == 671
    assert movielens.num_items == 9_066
    assert movielens.events["time"].iloc[0] == pd.Timestamp("1995-01-09 11:46:49", tz="UTC")
    assert movielens.events["time"].iloc[-1] == pd.Timestamp("2016-10-16 17:57:24", tz="UTC")


def test_movielens_schema_and_order(movielens):
    assert_event_log_schema(movielens)
    assert movielens.name == "movielens-small"
    assert not movielens.implicit and movielens.positive_threshold == 4.0
    assert not movielens.events.duplicated(["user", "item"]).any()
    assert set(movielens.events["label"].unique()) == set(np.arange(1, 11) / 2)
    np.testing.assert_array_equal(movielens.positives(), movielens.events["label"] >= 4.0)


def test_movielens_new_films_in_last_fifth(movielens):
    times = movielens.events["time"]
    cutoff = times.iloc[0] + 0.8 * (times.iloc[-1] - times.iloc[0])
    first_seen = movielens.first_seen()
    assert len(first_seen) == 9_066 and first_seen.is_monotonic_increasing
    assert int((first_seen >= cutoff).sum()) == 1_709


def test_movielens_genres_are_multi_valued(movielens):
    genre = movielens.item_attributes["genre"]
    assert genre[1] == ("Adventure", "Animation", "Children", "Comedy", "Fantasy")
    assert genre[3] == ("Comedy", "Romance")
    # 17 films are "(no genres listed)": they have no value, so they are absent.
    assert len(genre) == 9_049
    assert genre.map(len).max() > 1

    codes = movielens.attribute_codes("genre")
    assert len(codes.vocabulary) == 19 and "(no genres listed)" not in set(codes.vocabulary)
    assert list(codes.vocabulary) == sorted(codes.vocabulary)
    assert codes.indptr[-1] == len(codes.codes) == genre.map(len).sum()
    for position in (0, 100, len(codes.item_ids) - 1):
        item = codes.item_ids[position]
        start, end = codes.indptr[position], codes.indptr[position + 1]
        assert set(codes.vocabulary[codes.codes[start:end]]) == set(genre[item])
    np.testing.assert_array_equal(np.bincount(codes.segment_ids()), codes.counts)


def test_attribute_codes_unknown_name(movielens):
    with pytest.raises(KeyError, match=r"no item attribute 'brand'.*available: \['genre'\]"):
        movielens.attribute_codes("brand")


def test_event_log_rejects_unsorted_events(movielens):
    shuffled = movielens.events.iloc[::-1].reset_index(drop=True)
    with pytest.raises(ValueError, match="sorted by time"):
        EventLog(events=shuffled, item_attributes={}, name="x", implicit=False)
    resorted = EventLog.from_frame(shuffled, name="x", implicit=False)
    assert resorted.events["time"].is_monotonic_increasing


# load_events on users' own files


def own_log() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer": ["alice", "bob", "alice", "42", "bob"],
            "sku": [10, 20, 30, 10, 20],
            "when": [
                "2024-01-03T10:00:00Z",
                "2024-01-01T09:00:00",
                "2024-01-02T00:00:00+02:00",
                "2024-01-03T10:00:00Z",
                "2024-01-05T12:30:00Z",
            ],
            "stars": [5.0, 3.0, 4.0, 1.0, 2.0],
            "tags": ["a|b", "c", None, "a", "d|e"],
        }
    )


def write_table(frame: pd.DataFrame, path) -> None:
    if str(path).endswith(".parquet"):
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)


@pytest.mark.parametrize("file_name", ["log.csv", "log.csv.gz", "log.parquet"])
def test_load_events_formats(tmp_path, file_name):
    if file_name.endswith(".parquet"):
        pytest.importorskip("pyarrow")
    path = tmp_path / file_name
    write_table(own_log(), path)

    log = load_events(
        path, user="customer", item="sku", time="when", label="stars", attributes=["tags"]
    )

    assert_event_log_schema(log)
    assert log.name == "log" and not log.implicit and log.positive_threshold is None
    # Sorted by time; the two events at 10:00 on the 3rd keep their order in the file.
    assert log.events["item"].tolist() == [20, 30, 10, 10, 20]
    assert log.events["user"].tolist() == [
        string_id("bob"),
        string_id("alice"),
        string_id("alice"),
        42,
        string_id("bob"),
    ]
    assert log.events["time"].iloc[1] == pd.Timestamp("2024-01-01T22:00:00", tz="UTC")
    assert log.events["label"].tolist() == [3.0, 4.0, 5.0, 1.0, 2.0]
    # Each item keeps its latest non-missing value, split on "|".
    assert log.item_attributes["tags"].to_dict() == {10: ("a",), 20: ("d", "e")}
    assert log.num_users == 3 and log.num_items == 3


def test_parquet_list_attributes_are_multi_valued(tmp_path):
    pytest.importorskip("pyarrow")
    path = tmp_path / "log.parquet"
    pd.DataFrame(
        {
            "user": [1, 1, 2, 2, 3, 3],
            "item": [1, 2, 3, 4, 5, 1],
            "time": [1_700_000_000 + second for second in range(6)],
            "g": [["x"], [], None, ["c|d", " e ", None], ["", None], ["a", "b", "a"]],
        }
    ).to_parquet(path, index=False)

    log = load_events(path, attributes=["g"])

    # Elements are the values, never split on the separator; lists that are empty or hold
    # nothing but blanks count as missing, so items 2, 3 and 5 have none.
    assert log.item_attributes["g"].to_dict() == {1: ("a", "b"), 4: ("c|d", "e")}


def test_string_ids_are_stable():
    # Pinned values: raw IDs must not change between versions, or checkpoints break.
    assert string_id("abc") == 6455300059550759896
    assert string_id("sku-Ä1") == -8932269335479442153


def test_load_events_implicit_defaults_and_attribute_mapping(tmp_path):
    path = tmp_path / "clicks.csv"
    pd.DataFrame(
        {"user": [1, 2], "item": [7, 8], "time": [1_700_000_000, 1_700_000_100], "cat": [3, 4]}
    ).to_csv(path, index=False)

    log = load_events(path, attributes={"category": "cat"}, name="mine")

    assert log.implicit and log.name == "mine"
    assert log.events["label"].tolist() == [1.0, 1.0]
    assert log.positives().all()
    assert log.item_attributes["category"].to_dict() == {7: ("3",), 8: ("4",)}


@pytest.mark.parametrize(
    ("raw_times", "time_unit"),
    [
        ([1_700_000_000, 1_700_000_060], None),
        ([1_700_000_000_000, 1_700_000_060_000], None),
        ([1_700_000_000_000, 1_700_000_060_000], "ms"),
        ([1_700_000_000, 1_700_000_060], "s"),
    ],
)
def test_load_events_epoch_units(tmp_path, raw_times, time_unit):
    path = tmp_path / "log.csv"
    pd.DataFrame({"user": [1, 1], "item": [2, 3], "time": raw_times}).to_csv(path, index=False)

    log = load_events(path, time_unit=time_unit)

    expected = pd.to_datetime([1_700_000_000, 1_700_000_060], unit="s", utc=True)
    assert log.events["time"].tolist() == list(expected)


def test_load_events_whole_float_ids(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("user,item,time\n1,5,2024-01-01\n,6,2024-01-02\n")
    with pytest.raises(ValueError, match=r"user='user': 1 missing values, the first in row 1"):
        load_events(path)

    path.write_text("user,item,time\n1.0,5,2024-01-01\n2.0,6,2024-01-02\n")
    assert load_events(path).events["user"].tolist() == [1, 2]


@pytest.mark.parametrize(
    ("content", "arguments", "error", "message"),
    [
        (
            "user,item,time\n1,2,2024-01-01\n",
            {"item": "product"},
            ValueError,
            r"item='product': no such column .* available columns: \['user', 'item', 'time'\]",
        ),
        (
            "user,item,time\n1,2,2024-01-01\n",
            {"attributes": ["brand"]},
            ValueError,
            r"attributes\['brand'\]='brand': no such column",
        ),
        (
            "user,item,time\n1,2,2024-01-01\n1,3,yesterday\n",
            {},
            ValueError,
            r"time='time': cannot parse times as ISO 8601, e.g. 'yesterday' \(row 1",
        ),
        (
            "user,item,time\n1,2,2024-01-01\n1,3,2024-01-02\n",
            {"time_unit": "ms"},
            ValueError,
            r"time='time': time_unit='ms' needs epoch numbers, got values such as '2024-01-01'",
        ),
        (
            "user,item,time\n1,2,2024-01-01\n1,3,2024-01-02\n",
            {"time_unit": "days"},
            ValueError,
            r"time_unit: expected one of \('s', 'ms', 'us', 'ns'\)",
        ),
        (
            "user,item,time\n1.5,2,2024-01-01\n",
            {},
            ValueError,
            r"user='user': expected integer-like IDs, got non-integer numbers such as 1.5",
        ),
        (
            "user,item,time\nTrue,2,2024-01-01\nFalse,3,2024-01-01\n",
            {},
            TypeError,
            r"user='user': expected integer or string IDs, got dtype bool",
        ),
        (
            f"user,item,time\n1,{RESERVED_ID},2024-01-01\n",
            {},
            ValueError,
            r"item='item': the ID -9223372036854775808 is reserved",
        ),
        (
            "user,item,time,rating\n1,2,2024-01-01,good\n",
            {"label": "rating"},
            ValueError,
            r"label='rating': expected numeric labels, got values such as 'good'",
        ),
        ("", {}, ValueError, r"path: the file .* is empty \(no header\)"),
        ("user,item,time\n", {}, ValueError, r"path: the file .* has a header but no rows"),
    ],
)
def test_load_events_errors(tmp_path, content, arguments, error, message):
    path = tmp_path / "log.csv"
    path.write_text(content)
    with pytest.raises(error, match=message):
        load_events(path, **arguments)


def test_load_events_missing_file_and_unknown_format(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"path: no such file: .*nothing\.csv"):
        load_events(tmp_path / "nothing.csv")

    path = tmp_path / "log.json"
    path.write_text("{}")
    with pytest.raises(ValueError, match=r"path: unknown file format .*\.csv, \.csv\.gz"):
        load_events(path)


def test_load_events_names_the_file_it_cannot_read(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("user,item,time\nJürgen,2,2024-01-01\n".encode("latin-1"))
    with pytest.raises(
        ValueError, match=r"path: cannot read .*latin1\.csv' as CSV; expected UTF-8"
    ) as info:
        load_events(path)
    assert isinstance(info.value.__cause__, UnicodeDecodeError)

    path = tmp_path / "events.parquet"
    path.write_text("user,item,time\n1,2,2024-01-01\n")
    with pytest.raises(
        ValueError, match=r"path: cannot read .*events\.parquet' as Parquet; expected a Parquet"
    ) as info:
        load_events(path)
    assert "magic bytes" in str(info.value.__cause__)

    path = tmp_path / "plain.csv.gz"
    path.write_text("user,item,time\n1,2,2024-01-01\n")
    with pytest.raises(ValueError, match=r"plain\.csv\.gz' as CSV; expected a gzip-compressed"):
        load_events(path)


def test_load_events_empty_gzip(tmp_path):
    path = tmp_path / "log.csv.gz"
    with gzip.open(path, "wt") as file:
        file.write("")
    with pytest.raises(ValueError, match="is empty"):
        load_events(path)


# RetailRocket, in the published format


RETAILROCKET_EVENTS = """timestamp,visitorid,event,itemid,transactionid
1433221332117,257597,view,355908,
1433224214164,992329,view,248676,
1433221999827,111016,addtocart,248676,
1433223236124,483717,transaction,253185,7591
1433221955914,951259,view,367447,
"""
RETAILROCKET_PROPERTIES_1 = """timestamp,itemid,property,value
1435460400000,460429,categoryid,1338
1441508400000,206783,888,1116713 960601 n277.200
1439089200000,248676,categoryid,1277
1431226800000,248676,categoryid,1000
"""
RETAILROCKET_PROPERTIES_2 = """timestamp,itemid,property,value
1433041200000,355908,categoryid,299
1442113200000,248676,available,0
1433041200000,248676,categoryid,1001
"""


def write_retailrocket(folder):
    paths = [folder / name for name in ("events.csv", "part1.csv", "part2.csv")]
    texts = (RETAILROCKET_EVENTS, RETAILROCKET_PROPERTIES_1, RETAILROCKET_PROPERTIES_2)
    for path, text in zip(paths, texts, strict=True):
        path.write_text(text)
    return paths


def test_retailrocket(tmp_path):
    events_path, *properties_paths = write_retailrocket(tmp_path)

    log = retailrocket(events_path, properties_paths)

    assert_event_log_schema(log)
    assert log.implicit and len(log) == 5
    assert log.events["user"].tolist() == [257597, 951259, 111016, 483717, 992329]
    assert log.events["item"].tolist() == [355908, 367447, 248676, 253185, 248676]
    assert log.events["time"].iloc[0] == pd.Timestamp(1433221332117, unit="ms", tz="UTC")
    # The latest categoryid wins, across both files; other properties are ignored, and
    # items that were never clicked keep their category.
    assert log.item_attributes["category"].to_dict() == {
        248676: ("1277",),
        355908: ("299",),
        460429: ("1338",),
    }


def test_retailrocket_event_weights(tmp_path):
    events_path, *_ = write_retailrocket(tmp_path)

    log = retailrocket(events_path, event_weights={"addtocart": 2.0, "transaction": 5.0})

    assert log.events["label"].tolist() == [2.0, 5.0]
    assert log.item_attributes == {}
    with pytest.raises(ValueError, match=r"event_weights: expected weights for some of"):
        retailrocket(events_path, event_weights={"purchase": 1.0})


def test_retailrocket_wrong_file(tmp_path):
    path = tmp_path / "events.csv"
    path.write_text("time,visitor,item\n1,2,3\n")
    with pytest.raises(ValueError, match=r"lacks the columns \['timestamp', 'visitorid', 'event'"):
        retailrocket(path)
    with pytest.raises(FileNotFoundError, match="events_path: no such file"):
        retailrocket(tmp_path / "missing.csv")


# YooChoose, in the published format


YOOCHOOSE_CLICKS = """1,2014-04-07T10:51:09.277Z,214536502,0
1,2014-04-07T10:54:09.868Z,214536500,0
1,2014-04-07T10:54:46.998Z,214536506,S
2,2014-04-07T13:56:37.614Z,214662742,3
2,2014-04-07T13:57:19.373Z,214662742,2058105566
2,2014-04-07T13:58:37.446Z,214825110,S
3,2014-04-02T13:17:46.940Z,214716935,5
3,2014-04-02T13:26:02.515Z,214536500,12
"""
YOOCHOOSE_BUYS = """2,2014-04-07T13:59:00.000Z,214662742,1046,1
3,2014-04-02T13:30:00.000Z,214716935,0,0
"""


def test_yoochoose(tmp_path):
    clicks_path, buys_path = tmp_path / "yoochoose-clicks.dat", tmp_path / "yoochoose-buys.dat"
    clicks_path.write_text(YOOCHOOSE_CLICKS)
    buys_path.write_text(YOOCHOOSE_BUYS)

    log = yoochoose(clicks_path, buys_path, buy_weight=3.0)

    assert_event_log_schema(log)
    assert log.implicit and len(log) == 10
    assert log.events["user"].tolist()[:3] == [3, 3, 3]
    assert log.events["label"].tolist()[:3] == [1.0, 1.0, 3.0]
    assert log.events["time"].iloc[0] == pd.Timestamp("2014-04-02T13:17:46.940Z")
    assert log.item_attributes["category"].to_dict() == {
        214536500: ("12",),
        214662742: ("3",),
        214716935: ("5",),
    }
    assert log.item_attributes["brand"].to_dict() == {214662742: ("2058105566",)}


def test_yoochoose_clicks_only_and_nrows(tmp_path):
    clicks_path = tmp_path / "yoochoose-clicks.dat"
    clicks_path.write_text(YOOCHOOSE_CLICKS)

    log = yoochoose(clicks_path, nrows=3)

    assert len(log) == 3 and log.num_users == 1
    assert log.events["label"].tolist() == [1.0, 1.0, 1.0]
    assert len(log.item_attributes["category"]) == 0


def test_yoochoose_wrong_files(tmp_path):
    clicks_path = tmp_path / "yoochoose-clicks.dat"
    clicks_path.write_text("session,timestamp,item,category\n" + YOOCHOOSE_CLICKS)
    with pytest.raises(ValueError, match=re.escape("expected integer session IDs")):
        yoochoose(clicks_path)

    clicks_path.write_text("1,2014-04-07T10:51:09.277Z,214536502\n")
    with pytest.raises(ValueError, match="fewer than the 4 columns"):
        yoochoose(clicks_path)

    clicks_path.write_text("")
    with pytest.raises(ValueError, match="clicks_path: the file .* is empty"):
        yoochoose(clicks_path)
