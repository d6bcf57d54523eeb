"""Optimiser state that follows a growing embedding table.

Torch optimisers keep per-parameter state (Adam's moments, Adagrad's sums) shaped like the
parameter. When a dynamic table appends rows, its `weight` gets longer and that state no
longer matches. A global optimiser step pre-hook, registered on import, pads the per-row
state of every growable parameter before each step: old rows keep their state, new rows
start as a fresh optimiser would start them. Padding uses spare capacity, so it is
amortised O(rows added) like the table itself.

This works with any `torch.optim.Optimizer`; nothing needs to be called by the user.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_pre_hook

_GROWABLE_FLAG = "_lfe_growable"

# State entries whose fresh value is not zero, as (optimizer class name, state key) ->
# the param-group option that gives the initial value.
_FRESH_VALUE_OPTION = {
    ("Adagrad", "sum"): "initial_accumulator_value",
    ("Rprop", "step_size"): "lr",
}


def mark_growable(parameter: nn.Parameter) -> None:
    """Mark a parameter whose first dimension may grow between optimiser steps."""
    setattr(parameter, _GROWABLE_FLAG, True)


def grow_optimizer_state(optimizer: torch.optim.Optimizer) -> None:
    """Pad the per-row state of the optimiser's growable parameters to their current length."""
    for group in optimizer.param_groups:
        for parameter in group["params"]:
            if not getattr(parameter, _GROWABLE_FLAG, False):
                continue
            state = optimizer.state.get(parameter)
            if not state:
                continue
            for key, value in list(state.items()):
                if not _is_stale_row_state(value, parameter):
                    continue
                if value.is_sparse:
                    # e.g. SGD's momentum for sparse gradients: absent rows are zeros already.
                    state[key] = torch.sparse_coo_tensor(
                        value._indices(),
                        value._values(),
                        tuple(parameter.shape),
                        check_invariants=False,  # indices of a smaller table stay in range
                    )
                else:
                    fresh = _fresh_value(optimizer, group, key)
                    state[key] = _grow_rows(value, parameter.shape[0], fresh)


def _is_stale_row_state(value: object, parameter: torch.Tensor) -> bool:
    return (
        isinstance(value, torch.Tensor)
        and value.dim() == parameter.dim()
        and value.dim() >= 1
        and value.shape[1:] == parameter.shape[1:]
        and value.shape[0] < parameter.shape[0]
    )


def _fresh_value(optimizer: torch.optim.Optimizer, group: dict, key: str) -> float:
    option = _FRESH_VALUE_OPTION.get((type(optimizer).__name__, key))
    return float(group.get(option, 0.0)) if option else 0.0


def _grow_rows(value: torch.Tensor, rows: int, fresh: float) -> torch.Tensor:
    """`value` lengthened to `rows` rows, new rows set to `fresh`, reusing spare storage."""
    old_rows = value.shape[0]
    row_numel = math.prod(value.shape[1:])
    needed_bytes = (value.storage_offset() + rows * row_numel) * value.element_size()
    if value.is_contiguous() and value.untyped_storage().nbytes() >= needed_bytes:
        grown = value.new_empty(0).set_(
            value.untyped_storage(), value.storage_offset(), (rows, *value.shape[1:])
        )
    else:
        spare = value.new_empty(max(rows, 2 * old_rows), *value.shape[1:])
        spare[:old_rows] = value
        grown = spare[:rows]
    grown[old_rows:] = fresh
    return grown


def _step_pre_hook(optimizer: torch.optim.Optimizer, args, kwargs) -> None:
    grow_optimizer_state(optimizer)


_hook_handle = register_optimizer_step_pre_hook(_step_pre_hook)
