"""Side information of products, as tensors: multi-valued attributes and feature vectors.

`AttributeTable` holds one attribute (category, brand, genres, ...) of many products in CSR
form: product `ids[i]` has the value codes `values[indptr[i]:indptr[i+1]]`, each at most
once. A product may have no value, one, or several (a film with three genres).

Values are integer codes. Integers given by the user (Python ints, NumPy integers, integer
tensors) are used as codes as they are and must be >= 0. Any other hashable value (strings,
usually) is encoded by the table's `Vocabulary`, which hands out codes 0, 1, 2, ... in order
of first appearance; one attribute holds either integers or encoded values, never both.

Per-product side information for new IDs (`DynamicEmbedding.extend(ids, genre=...)`) may be:

- a list (or tuple, pandas Series, NumPy object array) with one entry per ID: a list,
  tuple or set of values, a single value, or None / NaN for "not given";
- a 1-D integer tensor (or array) of codes, one per ID, with -1 for "not given";
- a 2-D integer tensor (or array) of codes, one row per ID, padded with -1; a row of only
  -1 means "not given".

`FeatureTable` holds one dense feature vector per product (content embeddings, multi-hot
genre vectors, ...).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import torch

from lfe._ids import as_ids
from lfe.init._recipes import csr_select

_LIST_LIKE = (list, tuple, set, frozenset, np.ndarray)


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_missing(entry: Any) -> bool:
    if entry is None or entry is pd.NA:
        return True
    return isinstance(entry, (float, np.floating)) and math.isnan(entry)


class Vocabulary:
    """Integer codes for the values of one attribute.

    Integer values are their own codes; other values get codes 0, 1, 2, ... in order of first
    appearance. `kind` is "int" or "object" once a value was seen, None before.
    """

    def __init__(self) -> None:
        self.kind: str | None = None
        self._codes: dict[Any, int] = {}

    def __len__(self) -> int:
        return len(self._codes)

    def __repr__(self) -> str:
        return f"Vocabulary(kind={self.kind!r}, size={len(self._codes)})"

    def encode(self, values: list, name: str = "values") -> torch.Tensor:
        """int64 codes of the flat list `values`, adding unseen non-integer values."""
        if not values:
            return torch.empty(0, dtype=torch.int64)
        inverse, uniques = pd.factorize(pd.Series(values, dtype=object))
        if (inverse < 0).any():
            raise ValueError(f"{name} holds a missing value (None or NaN) inside a list")

        is_int = [_is_int(value) for value in uniques]
        kind = "int" if all(is_int) else "object" if not any(is_int) else "mixed"
        if kind == "mixed" or (self.kind is not None and kind != self.kind):
            seen = "a mix of both" if kind == "mixed" else f"{kind} values"
            raise ValueError(
                f"{name}: an attribute holds either integer codes or other values (strings), "
                f"not both; this attribute holds {self.kind or 'nothing yet'}, got {seen}"
            )
        if kind == "int":
            codes = np.asarray(list(uniques), dtype=np.int64)
            if (codes < 0).any():
                raise ValueError(f"{name} holds negative integer values; codes must be >= 0")
        # Only values that passed every check fix the kind of the attribute.
        self.kind = kind
        if kind != "int":
            codes = np.asarray([self._codes.setdefault(v, len(self._codes)) for v in uniques])
        return torch.from_numpy(codes.astype(np.int64)[inverse])


def canonical_csr(indptr: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(indptr, values) with each row's values sorted and repeated values dropped."""
    count = indptr.numel() - 1
    row_of = torch.repeat_interleave(
        torch.arange(count, device=indptr.device), indptr[1:] - indptr[:-1]
    )
    order = torch.argsort(values, stable=True)
    order = order[torch.argsort(row_of[order], stable=True)]
    row_of, values = row_of[order], values[order]

    repeated = torch.zeros_like(values, dtype=torch.bool)
    repeated[1:] = (row_of[1:] == row_of[:-1]) & (values[1:] == values[:-1])
    row_of, values = row_of[~repeated], values[~repeated]
    new_indptr = torch.zeros(count + 1, dtype=torch.int64, device=indptr.device)
    torch.cumsum(torch.bincount(row_of, minlength=count), 0, out=new_indptr[1:])
    return new_indptr, values


def parse_values(
    data: Any, count: int, name: str, vocabulary: Vocabulary
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-ID values in any accepted form (see the module docstring) as CPU tensors
    (indptr (count + 1,), values, given (count,) bool: whether the entry was given)."""
    if isinstance(data, np.ndarray) and data.dtype != object:
        data = torch.from_numpy(data)
    if isinstance(data, torch.Tensor):
        return _parse_codes(data, count, name)
    if isinstance(data, pd.Series):
        data = data.tolist()
    if not isinstance(data, (list, tuple, np.ndarray)):
        raise TypeError(
            f"{name} must be a list of per-ID values or an integer tensor of codes, "
            f"got {type(data).__name__}"
        )
    if len(data) != count:
        raise ValueError(f"{name} has {len(data)} entries, expected one per ID ({count})")

    lengths, flat, given = [], [], []
    for entry in data:
        if isinstance(entry, torch.Tensor):
            entry = entry.tolist()
        if not isinstance(entry, _LIST_LIKE) and _is_missing(entry):
            lengths.append(0)
            given.append(False)
            continue
        items = list(entry) if isinstance(entry, _LIST_LIKE) else [entry]
        lengths.append(len(items))
        flat.extend(items)
        given.append(True)

    indptr = torch.zeros(count + 1, dtype=torch.int64)
    torch.cumsum(torch.tensor(lengths, dtype=torch.int64), 0, out=indptr[1:])
    values = vocabulary.encode(flat, name)
    return (*canonical_csr(indptr, values), torch.tensor(given, dtype=torch.bool))


def _parse_codes(data: torch.Tensor, count: int, name: str):
    if data.dtype.is_floating_point or data.dtype.is_complex or data.dtype == torch.bool:
        raise TypeError(f"{name} must hold integer value codes, got dtype {data.dtype}")
    if data.dim() not in (1, 2) or data.shape[0] != count:
        raise ValueError(
            f"{name} must have shape ({count},) or ({count}, max_values) with -1 padding, "
            f"got {tuple(data.shape)}"
        )

    codes = data.to(torch.int64).cpu().reshape(count, -1)
    present = codes >= 0
    lengths = present.sum(1)
    indptr = torch.zeros(count + 1, dtype=torch.int64)
    torch.cumsum(lengths, 0, out=indptr[1:])
    return (*canonical_csr(indptr, codes[present]), lengths > 0)


def _sorted_positions(sorted_ids: torch.Tensor, ids: torch.Tensor):
    """(positions, found): where each of `ids` sits in the ascending `sorted_ids`."""
    if sorted_ids.numel() == 0:
        positions = torch.zeros_like(ids)
        return positions, torch.zeros_like(ids, dtype=torch.bool)
    positions = torch.searchsorted(sorted_ids, ids).clamp_(max=sorted_ids.numel() - 1)
    return positions, sorted_ids[positions] == ids


def _check_distinct(ids: torch.Tensor, name: str) -> None:
    if torch.unique(ids).numel() != ids.numel():
        raise ValueError(f"{name} holds duplicate IDs; give each product once")


class AttributeTable:
    """One attribute of many products: `ids[i]` has values `values[indptr[i]:indptr[i+1]]`.

    Args:
        ids: (n,) distinct product IDs, any order (stored sorted).
        indptr: (n + 1,) int64 CSR offsets into `values`.
        values: int64 value codes (>= 0).
        vocabulary: the codes of non-integer values; a new one if None.

    Build one from Python objects with `from_series` or `from_dict`.
    """

    def __init__(
        self,
        ids: torch.Tensor,
        indptr: torch.Tensor,
        values: torch.Tensor,
        vocabulary: Vocabulary | None = None,
    ) -> None:
        ids = as_ids(ids, name="ids").reshape(-1)
        indptr = torch.as_tensor(indptr, dtype=torch.int64, device=ids.device).reshape(-1)
        values = torch.as_tensor(values, dtype=torch.int64, device=ids.device).reshape(-1)
        if indptr.numel() != ids.numel() + 1 or int(indptr[0]) != 0:
            raise ValueError(f"indptr must have len(ids) + 1 = {ids.numel() + 1} entries from 0")
        if bool((indptr[1:] < indptr[:-1]).any()) or int(indptr[-1]) != values.numel():
            raise ValueError("indptr must never decrease and end at len(values)")
        if values.numel() and int(values.min()) < 0:
            raise ValueError("values must be codes >= 0")
        _check_distinct(ids, "ids")

        order = torch.argsort(ids)
        self.ids = ids[order]
        self.indptr, self.values = canonical_csr(*csr_select(indptr, values, order))
        self.vocabulary = vocabulary if vocabulary is not None else Vocabulary()

    @classmethod
    def empty(cls, vocabulary: Vocabulary | None = None) -> AttributeTable:
        nothing = torch.empty(0, dtype=torch.int64)
        return cls(nothing, torch.zeros(1, dtype=torch.int64), nothing, vocabulary)

    @classmethod
    def from_lists(
        cls, ids: torch.Tensor, data: Any, vocabulary: Vocabulary | None = None
    ) -> AttributeTable:
        """From `ids` and one entry per ID in any per-ID form of the module docstring; IDs
        whose entry is not given are left out."""
        ids = as_ids(torch.as_tensor(ids), name="ids").reshape(-1).cpu()
        vocabulary = vocabulary if vocabulary is not None else Vocabulary()
        indptr, values, given = parse_values(data, ids.numel(), "values", vocabulary)
        picked = torch.nonzero(given).reshape(-1)
        return cls(ids[picked], *csr_select(indptr, values, picked), vocabulary)

    @classmethod
    def from_series(cls, series: pd.Series, vocabulary: Vocabulary | None = None):
        """From a pandas Series indexed by product ID whose entries are lists, tuples or
        single values (None / NaN: no entry), e.g. `movies.set_index("id")["genres"]`."""
        ids = torch.as_tensor(np.asarray(series.index, dtype=np.int64))
        return cls.from_lists(ids, series.tolist(), vocabulary)

    @classmethod
    def from_dict(cls, mapping: Mapping[int, Any], vocabulary: Vocabulary | None = None):
        """From a dict product ID -> list / tuple of values or a single value."""
        ids = torch.tensor(list(mapping.keys()), dtype=torch.int64)
        return cls.from_lists(ids, list(mapping.values()), vocabulary)

    def __len__(self) -> int:
        return self.ids.numel()

    def __repr__(self) -> str:
        return f"AttributeTable(products={len(self)}, pairs={self.values.numel()})"

    @property
    def device(self) -> torch.device:
        return self.ids.device

    def to(self, device: torch.device | str) -> AttributeTable:
        moved = object.__new__(AttributeTable)
        moved.ids, moved.indptr = self.ids.to(device), self.indptr.to(device)
        moved.values, moved.vocabulary = self.values.to(device), self.vocabulary
        return moved

    def lookup(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(indptr, values, found) of the 1-D `ids`; an ID not in the table has no values."""
        positions, found = _sorted_positions(self.ids, ids)
        picked = torch.nonzero(found).reshape(-1)
        picked_indptr, picked_values = csr_select(self.indptr, self.values, positions[picked])

        counts = torch.zeros(ids.numel(), dtype=torch.int64, device=ids.device)
        counts[picked] = picked_indptr[1:] - picked_indptr[:-1]
        indptr = torch.zeros(ids.numel() + 1, dtype=torch.int64, device=ids.device)
        torch.cumsum(counts, 0, out=indptr[1:])
        return indptr, picked_values, found

    def update(self, other: AttributeTable) -> AttributeTable:
        """A table with the entries of both; `other` wins for IDs in both."""
        other = other.to(self.device)
        kept = torch.nonzero(~torch.isin(self.ids, other.ids)).reshape(-1)
        kept_indptr, kept_values = csr_select(self.indptr, self.values, kept)

        ids = torch.cat([self.ids[kept], other.ids])
        counts = torch.cat([kept_indptr.diff(), other.indptr.diff()])
        indptr = torch.zeros(ids.numel() + 1, dtype=torch.int64, device=self.device)
        torch.cumsum(counts, 0, out=indptr[1:])
        return AttributeTable(ids, indptr, torch.cat([kept_values, other.values]), self.vocabulary)


class FeatureTable:
    """One feature vector per product: `features[i]` belongs to `ids[i]`.

    Args:
        ids: (n,) distinct product IDs, any order (stored sorted).
        features: (n, f) floating features (stored as float32).
    """

    def __init__(self, ids: torch.Tensor, features: torch.Tensor) -> None:
        ids = as_ids(torch.as_tensor(ids), name="ids").reshape(-1)
        features = torch.as_tensor(features)
        if not features.dtype.is_floating_point:
            features = features.to(torch.float32)
        if features.dim() != 2 or features.shape[0] != ids.numel():
            raise ValueError(
                f"features must have shape (len(ids), f) = ({ids.numel()}, f), "
                f"got {tuple(features.shape)}"
            )
        _check_distinct(ids, "ids")

        order = torch.argsort(ids)
        self.ids = ids[order]
        self.features = features.to(device=ids.device, dtype=torch.float32)[order]

    @classmethod
    def empty(cls, num_features: int = 0) -> FeatureTable:
        return cls(torch.empty(0, dtype=torch.int64), torch.empty(0, num_features))

    @classmethod
    def from_dataframe(cls, frame: pd.DataFrame) -> FeatureTable:
        """From a DataFrame indexed by product ID with one numeric column per feature."""
        ids = torch.as_tensor(np.asarray(frame.index, dtype=np.int64))
        return cls(ids, torch.tensor(frame.to_numpy(dtype=np.float32)))

    @classmethod
    def from_dict(cls, mapping: Mapping[int, Any]) -> FeatureTable:
        """From a dict product ID -> feature vector (list, array or tensor)."""
        ids = torch.tensor(list(mapping.keys()), dtype=torch.int64)
        vectors = [torch.as_tensor(v, dtype=torch.float32) for v in mapping.values()]
        return cls(ids, torch.stack(vectors) if vectors else torch.empty(0, 0))

    def __len__(self) -> int:
        return self.ids.numel()

    def __repr__(self) -> str:
        return f"FeatureTable(products={len(self)}, num_features={self.num_features})"

    @property
    def num_features(self) -> int:
        return self.features.shape[1]

    @property
    def device(self) -> torch.device:
        return self.ids.device

    def to(self, device: torch.device | str) -> FeatureTable:
        moved = object.__new__(FeatureTable)
        moved.ids, moved.features = self.ids.to(device), self.features.to(device)
        return moved

    def lookup(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(positions, found) of the 1-D `ids` in `self.ids` / rows of `self.features`."""
        return _sorted_positions(self.ids, ids)

    def update(self, other: FeatureTable) -> FeatureTable:
        """A table with the entries of both; `other` wins for IDs in both."""
        if len(self) and len(other) and other.num_features != self.num_features:
            raise ValueError(
                f"features have {other.num_features} columns, expected {self.num_features}"
            )
        other = other.to(self.device)
        kept = ~torch.isin(self.ids, other.ids)
        if not len(self):
            return other
        return FeatureTable(
            torch.cat([self.ids[kept], other.ids]),
            torch.cat([self.features[kept], other.features]),
        )


def choose_rows(
    use_first: torch.Tensor,
    first: tuple[torch.Tensor, torch.Tensor],
    second: tuple[torch.Tensor, torch.Tensor],
) -> tuple[torch.Tensor, torch.Tensor]:
    """CSR whose row i is row i of `first` where use_first[i], else row i of `second`."""
    count = use_first.numel()
    device = use_first.device
    from_first = torch.nonzero(use_first).reshape(-1)
    from_second = torch.nonzero(~use_first).reshape(-1)
    picked = [
        (positions, *csr_select(indptr, values, positions))
        for positions, (indptr, values) in ((from_first, first), (from_second, second))
    ]

    counts = torch.zeros(count, dtype=torch.int64, device=device)
    for positions, indptr, _ in picked:
        counts[positions] = indptr.diff()
    indptr = torch.zeros(count + 1, dtype=torch.int64, device=device)
    torch.cumsum(counts, 0, out=indptr[1:])

    values = torch.empty(int(indptr[-1]), dtype=torch.int64, device=device)
    for positions, part_indptr, part_values in picked:
        shift = torch.repeat_interleave(indptr[positions] - part_indptr[:-1], part_indptr.diff())
        values[shift + torch.arange(shift.numel(), device=device)] = part_values
    return indptr, values
