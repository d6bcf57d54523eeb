"""lfe: lifelong embeddings for PyTorch, tables that grow with a product catalogue."""

from lfe._ids import RESERVED_ID
from lfe.id_map import IdMap, available_backends

__version__ = "0.1.0"

__all__ = ["RESERVED_ID", "IdMap", "available_backends", "__version__"]
