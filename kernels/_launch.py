"""Launch helpers shared by the kernels: block sizes and the accumulator type."""

from __future__ import annotations

import torch
import triton
import triton.language as tl

MAX_BLOCK_D = 256
"""Widest column tile; wider rows are covered by more programs along the grid's last axis."""

ELEMENTS_PER_TILE = 4096
"""Rows x columns handled by one program of the 2-D tiled kernels (gather)."""


def block_d(dim: int) -> int:
    """Column tile for rows of `dim` elements: a power of two, at most MAX_BLOCK_D."""
    return min(triton.next_power_of_2(max(dim, 1)), MAX_BLOCK_D)


def accumulator(dtype: torch.dtype) -> tl.dtype:
    """float64 storage sums in float64 (gradcheck needs it); every other dtype in float32."""
    return tl.float64 if dtype == torch.float64 else tl.float32
