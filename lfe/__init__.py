"""lfe: lifelong embeddings for PyTorch, tables that grow with a product catalogue."""

from lfe import init, optim
from lfe._ids import RESERVED_ID
from lfe.id_map import IdMap, available_backends
from lfe.modules import DynamicEmbedding, DynamicEmbeddingBag

__version__ = "0.1.0"

__all__ = [
    "RESERVED_ID",
    "DynamicEmbedding",
    "DynamicEmbeddingBag",
    "IdMap",
    "available_backends",
    "init",
    "optim",
    "__version__",
]
