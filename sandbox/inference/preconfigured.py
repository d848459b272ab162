"""The inference endpoints every 9.x cluster lists without creating them (ES DefaultEndPointsIT) [S].

Their models are downloaded by ES on first use; the sandbox has no network, so calling them fails with ES's
download-in-progress error (see InferenceStore._deployment). They are listed by GET and cannot be re-created.
"""

from __future__ import annotations

from typing import Any

_ADAPTIVE = {"enabled": True, "min_number_of_allocations": 0, "max_number_of_allocations": 32}
_CHUNKING = {"strategy": "sentence", "max_chunk_size": 250, "sentence_overlap": 1}

PRECONFIGURED: dict[str, dict[str, Any]] = {
    ".elser-2-elasticsearch": {
        "task_type": "sparse_embedding",
        "service_settings": {"num_threads": 1, "model_id": ".elser_model_2_linux-x86_64",
                             "adaptive_allocations": _ADAPTIVE},
        "chunking_settings": _CHUNKING,
    },
    ".multilingual-e5-small-elasticsearch": {
        "task_type": "text_embedding",
        "service_settings": {"num_threads": 1, "model_id": ".multilingual-e5-small_linux-x86_64",
                             "adaptive_allocations": _ADAPTIVE, "dimensions": 384, "similarity": "cosine",
                             "element_type": "float"},
        "chunking_settings": _CHUNKING,
    },
    ".rerank-v1-elasticsearch": {
        "task_type": "rerank",
        "service_settings": {"num_threads": 1, "model_id": ".rerank-v1", "adaptive_allocations": _ADAPTIVE},
        "task_settings": {"return_documents": True},
    },
}


def preconfigured_endpoints() -> list[dict[str, Any]]:
    import copy

    return [{"inference_id": inference_id, "service": "elasticsearch", "deployment_id": inference_id,
             **copy.deepcopy(values)} for inference_id, values in PRECONFIGURED.items()]
