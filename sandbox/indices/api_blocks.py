"""Index blocks: PUT /<index>/_block/<block> (indices.add_block) and DELETE /<index>/_block/<block>
(indices.remove_block, 9.1+).

ES TransportAddIndexBlockAction / MetadataIndexStateService#addIndexBlock set the block's dynamic setting
`index.blocks.<block>` to true (IndexMetadata.APIBlock), so GET _settings shows it and a later
`index.blocks.write: false` lifts it; writes to a write- or read_only-blocked index then fail with
cluster_block_exception (sandbox/documents/writes.py#check_write_block).
"""

from __future__ import annotations

from typing import Any

from sandbox.errors import IllegalArgument
from sandbox.http import EsRequest, Route
from sandbox.indices.names import index_options
from sandbox.indices.store import IndexStore

# IndexMetadata.APIBlock names
BLOCKS = ("read_only", "read", "write", "metadata", "read_only_allow_delete")


def _block(name: str) -> str:
    if name not in BLOCKS:
        raise IllegalArgument(f"No block found with name {name}")  # IndexMetadata.APIBlock#fromName
    return name


def _set(sb: Any, req: EsRequest, index: str, block: str, value: str | None) -> list[str]:
    store: IndexStore = sb.cluster.indices
    setting = f"index.blocks.{_block(block)}"
    found = store.resolve(index, **index_options(req, expand_default="open"))
    for item in found:
        settings = dict(item.settings)
        if value is None:
            settings.pop(setting, None)
        else:
            settings[setting] = value
        item.settings = dict(sorted(settings.items()))
    return [item.name for item in found]


def add_block(sb: Any, req: EsRequest, index: str, block: str) -> dict:
    """AddIndexBlockResponse (9.x): acknowledged, shards_acknowledged and one {name, blocked} per index."""
    names = _set(sb, req, index, block, "true")
    return {"acknowledged": True, "shards_acknowledged": True,
            "indices": [{"name": name, "blocked": True} for name in names]}


def remove_block(sb: Any, req: EsRequest, index: str, block: str) -> dict:
    """RemoveIndexBlockResponse (9.1+): acknowledged and one {name, unblocked} per index."""
    names = _set(sb, req, index, block, None)
    return {"acknowledged": True, "indices": [{"name": name, "unblocked": True} for name in names]}


ROUTES = [
    Route(("PUT",), "/<index>/_block/<block>", add_block, api="indices.add_block"),
    Route(("DELETE",), "/<index>/_block/<block>", remove_block, api="indices.remove_block"),
]
