"""Triton kernels of the embedding data path, installed as `lfe.kernels`.

Each kernel has a plain-PyTorch reference in `reference.py`. The launchers take clean,
validated tensors (checks live in `lfe.ops`): 2-D float tables with unit column stride,
int64 rows and CSR boundaries on the same device. They run on CUDA tensors, and on CPU
tensors when `TRITON_INTERPRET=1` was set before Triton was imported.
"""

from .gather import gather
from .pooled_gather import pooled_gather
from .scatter_add import scatter_add, sort_rows
from .segment_mean import segment_mean

__all__ = ["gather", "pooled_gather", "scatter_add", "segment_mean", "sort_rows"]
