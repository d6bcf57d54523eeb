"""The embedding modules: single-device tables addressed by raw IDs."""

from lfe.modules.embedding import DynamicEmbedding
from lfe.modules.embedding_bag import DynamicEmbeddingBag
from lfe.modules.table import DynamicTable

__all__ = ["DynamicEmbedding", "DynamicEmbeddingBag", "DynamicTable"]
