"""Test helpers around the tiny cross-encoder of sandbox/demo_model.py: trace it once with the real eland, and
score pairs locally (traced TorchScript and untraced Hugging Face model) to compare with what the sandbox serves.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox.demo_model import MINILM_SIZE, build_tiny_cross_encoder, tiny_vocabulary

__all__ = ["MINILM_SIZE", "TracedModel", "build_tiny_cross_encoder", "hf_scores", "local_scores", "tiny_vocabulary",
           "traced_tiny_cross_encoder"]


@dataclass(frozen=True)
class TracedModel:
    """What eland produces for the tiny cross-encoder: the HF directory, TorchScript file, vocabulary and config."""

    hf_directory: Path
    model_path: Path
    vocab_path: Path
    config: dict[str, Any]

    @property
    def vocabulary(self) -> dict[str, Any]:
        return json.loads(self.vocab_path.read_text())

    def definition(self) -> bytes:
        return self.model_path.read_bytes()


@functools.cache
def traced_tiny_cross_encoder() -> TracedModel:
    """Build and trace the tiny cross-encoder with the real eland once per test process (a few seconds of torch).

    Shared by every test module through the cache; the files live in a temporary directory removed at exit.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach a model hub
    from eland.ml.pytorch.transformers import TransformerModel  # lazy: pulls in torch and transformers

    root = Path(tempfile.mkdtemp(prefix="tiny-cross-encoder-"))
    atexit.register(shutil.rmtree, root, True)
    hf_directory = build_tiny_cross_encoder(root / "hf")
    model = TransformerModel(model_id=str(hf_directory), task_type="text_similarity", es_version=(9, 1, 0),
                             quantize=False)
    out = root / "eland"
    out.mkdir()
    model_path, config, vocab_path = model.save(str(out))
    return TracedModel(hf_directory, Path(model_path), Path(vocab_path), config.to_dict())


def local_scores(traced: TracedModel, query: str, texts: list[str]) -> list[float]:
    """Scores of (query, text) pairs computed here, without the sandbox: HF tokenizer + the traced TorchScript."""
    import torch
    import transformers

    tokenizer = transformers.BertTokenizer.from_pretrained(traced.hf_directory)
    module = torch.jit.load(str(traced.model_path))
    scores = []
    for text in texts:
        enc = tokenizer(query, text, truncation="only_second", max_length=512, return_tensors="pt")
        ids = enc["input_ids"]
        positions = torch.arange(ids.size(1), dtype=torch.long).unsqueeze(0)
        with torch.no_grad():
            logits = module(ids, enc["attention_mask"], enc["token_type_ids"], positions)
        scores.append(float((logits[0] if isinstance(logits, tuple) else logits)[0][0]))
    return scores


def hf_scores(traced: TracedModel, query: str, texts: list[str]) -> list[float]:
    """The same pairs scored by the untraced Hugging Face model (BertForSequenceClassification)."""
    import torch
    import transformers

    tokenizer = transformers.BertTokenizer.from_pretrained(traced.hf_directory)
    model = transformers.BertForSequenceClassification.from_pretrained(traced.hf_directory)
    model.eval()
    scores = []
    for text in texts:
        enc = tokenizer(query, text, truncation="only_second", max_length=512, return_tensors="pt")
        with torch.no_grad():
            scores.append(float(model(**enc).logits[0][0]))
    return scores
