"""The bundled MovieLens "latest-small" ratings log (see `data/NOTICE.md` for its terms)."""

from __future__ import annotations

import importlib.resources

import pandas as pd

from lfe.datasets.attributes import item_attribute
from lfe.datasets.events import EventLog

RATINGS_FILE = "movielens_small_ratings.csv.gz"
MOVIES_FILE = "movielens_small_movies.csv.gz"
NO_GENRE = "(no genres listed)"


def movielens_small() -> EventLog:
    """The MovieLens ml-latest-small ratings log (October 2016 release), bundled with lfe.

    100,004 explicit ratings (0.5 to 5 stars in half steps) by 671 users of 9,066 films,
    from 1995-01-09 to 2016-10-16. Users and items are the GroupLens `userId` and
    `movieId`. The item attribute "genre" holds each film's genres (several per film;
    films listed as "(no genres listed)" have none). A rating of 4.0 or more is a
    positive. Loading needs no network and takes a fraction of a second.

    The data is GroupLens Research's, redistributed under their terms (research use,
    non-commercial, cite Harper and Konstan, ACM TiiS 5(4), 2015); read
    `lfe/datasets/data/NOTICE.md` before using it.
    """
    data = importlib.resources.files("lfe.datasets") / "data"
    with importlib.resources.as_file(data / RATINGS_FILE) as ratings_path:
        ratings = pd.read_csv(
            ratings_path,
            dtype={"userId": "int64", "movieId": "int64", "rating": "float64"},
        )
    with importlib.resources.as_file(data / MOVIES_FILE) as movies_path:
        movies = pd.read_csv(movies_path, usecols=["movieId", "genres"])

    events = pd.DataFrame(
        {
            "user": ratings["userId"],
            "item": ratings["movieId"],
            "time": pd.to_datetime(ratings["timestamp"], unit="s", utc=True),
            "label": ratings["rating"],
        }
    )
    genre = item_attribute(
        movies["movieId"].to_numpy(), movies["genres"], separator="|", ignore=(NO_GENRE,)
    )
    return EventLog.from_frame(
        events,
        name="movielens-small",
        implicit=False,
        item_attributes={"genre": genre},
        positive_threshold=4.0,
    )
