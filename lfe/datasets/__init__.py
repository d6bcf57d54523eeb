"""Interaction logs for the incremental-catalogue experiment.

Every loader returns an `EventLog`: events sorted by time with raw int64 user and item IDs,
UTC times and float labels, plus multi-valued item attributes for cold-start initialisers.

- `movielens_small()`: the MovieLens ml-latest-small ratings, bundled (no download).
- `load_events(path, ...)`: your own log in CSV, CSV.gz or Parquet.
- `retailrocket(...)`, `yoochoose(...)`: the public e-commerce logs in their published
  formats, read from files you downloaded.
"""

from lfe.datasets.columns import string_id
from lfe.datasets.events import AttributeCodes, EventLog
from lfe.datasets.files import load_events
from lfe.datasets.movielens import movielens_small
from lfe.datasets.retailrocket import retailrocket
from lfe.datasets.yoochoose import yoochoose

__all__ = [
    "AttributeCodes",
    "EventLog",
    "load_events",
    "movielens_small",
    "retailrocket",
    "string_id",
    "yoochoose",
]
