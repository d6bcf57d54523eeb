"""`AttributeMean`: a new product starts at the mean of known products that share an attribute."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import torch

from lfe.init._recipes import (
    check_initializer,
    check_on_missing,
    combine,
    csr_select,
    empty_rows,
    first_positions,
    known_rows,
    run_fallback,
)
from lfe.init.base import Initializer, InitialRows, SegmentMean, TableView
from lfe.init.side_info import AttributeTable, choose_rows, parse_values
from lfe.init.statistics import Mean

MULTI_VALUE = ("mean_of_values", "pooled")


class AttributeMean(Initializer):
    """The row of a new product is the mean of the rows of known products sharing an
    attribute value with it (same category, brand, genre, ...).

    For each value v of the product, m_v is the mean row of the known products with value v
    (known: in the table, with a row in use). Values no known product has are skipped.
    With several values (a film with three genres):

    - `multi_value="mean_of_values"` (default): the plain mean of the m_v. Each of the
      product's values counts the same, so a niche genre is not drowned by a popular one;
      the new row sits at the centre of the groups the product belongs to.
    - `multi_value="pooled"`: the mean over all (value, known product) matches, i.e. the m_v
      weighted by their number of known products. A known product sharing two values with
      the new one counts twice: the mean over the union of matching products, weighted by
      how many values each shares.

    Both are computed from per-value means (one pass over the known products of the needed
    values), so the cost is linear in catalogue size plus new IDs, never new IDs times
    group size, however big a category is.

    Fallback chain: `attributes` are tried in order (e.g. ["category", "brand"]); a new
    product takes the first attribute for which at least one of its values has a known
    product; products no attribute resolves go to `fallback` (default `Mean()`).

    Where the values come from: for a new ID, `side_info[name]` when the call carries it
    and gives a value for that ID, else the catalogue. For known products, the catalogue,
    which holds the `catalogue` given here plus everything `observe` recorded (the side
    information of earlier `extend` calls; the newest entry of an ID wins). See
    `lfe.init.side_info` for the accepted forms of values.

    Args:
        attributes: one attribute name or several in priority order.
        catalogue: attributes of products (known or to come): a pandas DataFrame indexed by
            product ID with one column per attribute, or a mapping attribute name -> an
            `AttributeTable`, a pandas Series indexed by ID (entries lists / tuples / single
            values), a dict ID -> values, or an (ids, indptr, values) CSR tuple.
        fallback: initialiser for IDs no attribute resolves.
        multi_value: "mean_of_values" or "pooled", see above.
        on_missing: "fallback" (default) sends IDs without any attribute value (neither in
            side_info nor in the catalogue) to `fallback`; "error" raises KeyError instead.

    Example:
        >>> genres = pd.Series({1: ["drama", "crime"], 2: ["comedy"], 3: ["drama"]})
        >>> init = AttributeMean(["genres"], catalogue={"genres": genres})
        >>> emb = lfe.DynamicEmbedding(32, init=init)
        >>> emb.extend(torch.tensor([4]), genres=[["crime", "comedy"]])
    """

    def __init__(
        self,
        attributes: str | Sequence[str],
        catalogue: pd.DataFrame | Mapping[str, Any] | None = None,
        *,
        fallback: Initializer | None = None,
        multi_value: str = "mean_of_values",
        on_missing: str = "fallback",
    ) -> None:
        names = [attributes] if isinstance(attributes, str) else list(attributes)
        if not names or not all(isinstance(name, str) for name in names):
            raise ValueError(
                f"attributes must be a name or a non-empty list of names, got {attributes!r}"
            )
        if len(set(names)) != len(names):
            raise ValueError(f"attributes lists a name twice: {names}")
        if multi_value not in MULTI_VALUE:
            raise ValueError(f"multi_value must be one of {MULTI_VALUE}, got {multi_value!r}")

        self.attributes = names
        self.multi_value = multi_value
        self.on_missing = check_on_missing(on_missing)
        self.fallback = Mean() if fallback is None else check_initializer(fallback, "fallback")
        self.tables = _catalogue_tables(catalogue, names)

    def initial_rows(
        self, table: TableView, ids: torch.Tensor, side_info: Mapping[str, Any]
    ) -> InitialRows:
        count = ids.numel()
        if count == 0:
            return empty_rows(table)
        values_of = {name: self._values_of(name, ids, side_info) for name in self.attributes}

        parts = []
        remaining = torch.arange(count, device=ids.device)
        for name in self.attributes:
            indptr, values, _ = values_of[name]
            if remaining.numel() == 0:
                break
            selected = csr_select(indptr, values, remaining)
            rows, resolved = self._attribute_rows(table, name, *selected)
            parts.append((remaining[resolved], rows))
            remaining = remaining[~resolved]

        if self.on_missing == "error":
            self._check_given(ids, values_of)
        parts.append((remaining, run_fallback(self.fallback, table, ids, side_info, remaining)))
        return combine(table, count, parts)

    def observe(self, ids: torch.Tensor, side_info: Mapping[str, Any]) -> None:
        """Record the attribute values in `side_info` of `ids` in the catalogue.

        All values are parsed before any is recorded, so bad side information changes nothing.
        An ID given more than once keeps the values of its first occurrence.
        """
        updated = {}
        first = first_positions(ids.cpu())
        for name in self.attributes:
            if name not in side_info:
                continue
            known = self.tables[name]
            indptr, values, given = parse_values(
                side_info[name], ids.numel(), f"side_info[{name!r}]", known.vocabulary
            )
            picked = first[given[first]]
            update = AttributeTable(
                ids.cpu()[picked], *csr_select(indptr, values, picked), known.vocabulary
            )
            updated[name] = known.update(update.to(known.device))
        self.fallback.observe(ids, side_info)
        self.tables.update(updated)

    def _table(self, name: str, device: torch.device) -> AttributeTable:
        if self.tables[name].device != device:
            self.tables[name] = self.tables[name].to(device)
        return self.tables[name]

    def _values_of(self, name: str, ids: torch.Tensor, side_info: Mapping[str, Any]):
        """(indptr, values, given) of attribute `name` for `ids`: side_info, else catalogue."""
        catalogue = self._table(name, ids.device)
        indptr, values, found = catalogue.lookup(ids)
        if name not in side_info:
            return indptr, values, found

        parsed = parse_values(
            side_info[name], ids.numel(), f"side_info[{name!r}]", catalogue.vocabulary
        )
        side_indptr, side_values, given = (part.to(ids.device) for part in parsed)
        indptr, values = choose_rows(given, (side_indptr, side_values), (indptr, values))
        return indptr, values, given | found

    def _attribute_rows(
        self, table: TableView, name: str, indptr: torch.Tensor, values: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(rows of the resolved IDs, resolved mask) for the IDs with CSR values."""
        from lfe import ops  # lfe.ops imports lfe.init, so not at module level

        count = indptr.numel() - 1
        value_keys, value_counts, value_means = self._value_means(table, name, values)
        if value_keys.numel() == 0:
            return empty_rows(table), torch.zeros(count, dtype=torch.bool, device=values.device)

        positions = torch.searchsorted(value_keys, values).clamp_(max=value_keys.numel() - 1)
        hit = value_keys[positions] == values
        id_numbers = torch.arange(count, device=values.device)
        id_of_value = torch.repeat_interleave(id_numbers, indptr.diff())
        hits_per_id = torch.bincount(id_of_value[hit], minlength=count)
        resolved = hits_per_id > 0

        # Hits are in ID order, and IDs without hits have none: a CSR over the resolved IDs.
        hit_indptr = torch.zeros(int(resolved.sum()) + 1, dtype=torch.int64, device=values.device)
        torch.cumsum(hits_per_id[resolved], 0, out=hit_indptr[1:])
        hit_positions = positions[hit]
        weights = value_counts[hit_positions].float() if self.multi_value == "pooled" else None
        recipe = SegmentMean(hit_indptr, hit_positions, weights)
        return ops.segment_mean(value_means, recipe), resolved

    def _value_means(self, table: TableView, name: str, needed: torch.Tensor):
        """(sorted value codes, number of known products, mean row) of the `needed` values
        that at least one known product has."""
        from lfe import ops

        catalogue = self._table(name, needed.device)
        item_rows = known_rows(table, catalogue.ids)
        pair_rows = torch.repeat_interleave(item_rows, catalogue.indptr.diff())
        keep = (pair_rows >= 0) & torch.isin(catalogue.values, needed)
        pair_rows, pair_values = pair_rows[keep], catalogue.values[keep]

        order = torch.argsort(pair_values, stable=True)
        value_keys, value_counts = torch.unique_consecutive(pair_values[order], return_counts=True)
        group_indptr = torch.zeros(value_keys.numel() + 1, dtype=torch.int64, device=needed.device)
        torch.cumsum(value_counts, 0, out=group_indptr[1:])
        means = ops.segment_mean(table.weight, SegmentMean(group_indptr, pair_rows[order]))
        return value_keys, value_counts, means

    def _check_given(self, ids: torch.Tensor, values_of) -> None:
        given = torch.zeros(ids.numel(), dtype=torch.bool, device=ids.device)
        for _, _, given_here in values_of.values():
            given |= given_here
        if not bool(given.all()):
            missing = ids[~given]
            keys = ", ".join(f"side_info[{name!r}]" for name in self.attributes)
            raise KeyError(
                f"AttributeMean(on_missing='error'): {missing.numel()} of {ids.numel()} new IDs "
                f"(e.g. ID {int(missing[0])}) have no value in {keys} nor in the catalogue"
            )

    def __repr__(self) -> str:
        return (
            f"AttributeMean({self.attributes}, multi_value={self.multi_value!r}, "
            f"fallback={self.fallback!r})"
        )


def _catalogue_tables(catalogue: Any, names: list[str]) -> dict[str, AttributeTable]:
    if catalogue is None:
        catalogue = {}
    elif isinstance(catalogue, pd.DataFrame):
        catalogue = {name: catalogue[name] for name in names if name in catalogue.columns}
    elif not isinstance(catalogue, Mapping):
        raise TypeError(
            f"catalogue must be a DataFrame or a mapping attribute name -> values, "
            f"got {type(catalogue).__name__}"
        )
    unknown = sorted(set(catalogue) - set(names))
    if unknown:
        raise ValueError(f"catalogue holds attributes {unknown} that are not in attributes {names}")

    tables = {}
    for name in names:
        tables[name] = _as_attribute_table(catalogue.get(name), f"catalogue[{name!r}]")
    return tables


def _as_attribute_table(value: Any, name: str) -> AttributeTable:
    if value is None:
        return AttributeTable.empty()
    if isinstance(value, AttributeTable):
        return value
    if isinstance(value, pd.Series):
        return AttributeTable.from_series(value)
    if isinstance(value, Mapping):
        return AttributeTable.from_dict(value)
    if isinstance(value, tuple) and len(value) == 3:
        return AttributeTable(*value)
    raise TypeError(
        f"{name} must be an AttributeTable, a pandas Series indexed by ID, a dict ID -> values "
        f"or an (ids, indptr, values) tuple, got {type(value).__name__}"
    )
