"""ID maps: hash tables from raw int64 IDs to row indices, with interchangeable backends."""

from lfe.id_map.id_map import IdMap, available_backends, resolve_backend

__all__ = ["IdMap", "available_backends", "resolve_backend"]
