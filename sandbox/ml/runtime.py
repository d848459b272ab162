"""Running uploaded pytorch models: load the TorchScript bytes, tokenize with the uploaded vocabulary, infer.

This is the sandbox's stand-in for ES's pytorch_inference process. torch and tokenizers are imported lazily
(only when a deployment starts) so the sandbox stays light for everything else.

Inputs follow eland's traced signature (eland/ml/pytorch/transformers.py `_compatible_inputs`): BERT-style
models take (input_ids, attention_mask, token_type_ids, position_ids); models whose traced forward takes fewer
arguments get the leading ones. Each document is run on its own (batch of 1), so scores equal a local run.
"""

from __future__ import annotations

import io
import math
import threading
from dataclasses import dataclass
from typing import Any

from sandbox.errors import EsError, StatusException

_TORCH_LOCK = threading.Lock()  # torch.jit.load is not re-entrant-safe across threads on all builds


class LoadError(Exception):
    """The definition could not be loaded as TorchScript (ES: the node's routing state becomes failed)."""


@dataclass
class Encoded:
    ids: list[int]
    type_ids: list[int]
    truncated: bool


class WordPiece:
    """BERT WordPiece tokenization per the model config, built from the uploaded vocabulary list."""

    def __init__(self, vocabulary: list[str], tokenization: dict[str, Any]):
        from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors  # lazy

        kind, settings = next(iter(tokenization.items()))
        if kind not in ("bert", "bert_ja"):
            raise StatusException(f"the sandbox can only run models with BERT WordPiece tokenization; "
                                  f"this model uses [{kind}]", 400)
        self.settings = settings
        vocab = {token: i for i, token in enumerate(vocabulary)}
        # The pieces of BertWordPieceTokenizer, assembled by hand so vocabularies without [CLS]/[SEP] (allowed
        # when with_special_tokens is false, as in ES's own tests) still load.
        tokenizer = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
        tokenizer.normalizer = normalizers.BertNormalizer(
            clean_text=True, handle_chinese_chars=True,
            strip_accents=None,  # ES's BasicTokenizer strips accents exactly when it lower-cases
            lowercase=bool(settings.get("do_lower_case", False)),
        )
        tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        if "[CLS]" in vocab and "[SEP]" in vocab:
            tokenizer.post_processor = processors.BertProcessing(("[SEP]", vocab["[SEP]"]),
                                                                 ("[CLS]", vocab["[CLS]"]))
        self.tokenizer = tokenizer
        self.cls, self.sep = vocab.get("[CLS]"), vocab.get("[SEP]")
        self.span = int(settings.get("span", -1))
        self.with_special = bool(settings.get("with_special_tokens", True))
        self.max_length = int(settings.get("max_sequence_length", 512))
        self.truncate = settings.get("truncate", "first")

    def encode(self, first: str, second: str | None = None) -> Encoded:
        self.tokenizer.no_truncation()
        full = self.tokenizer.encode(first, second, add_special_tokens=self.with_special)
        if len(full.ids) <= self.max_length:
            return Encoded(list(full.ids), list(full.type_ids), False)
        if self.truncate == "none":
            # ES BertTokenizer: "Input too large. The tokenized input length [..] exceeds the maximum sequence
            # length [..]" (400)
            raise StatusException(f"Input too large. The tokenized input length [{len(full.ids)}] exceeds the maximum "
                                  f"sequence length [{self.max_length}]", 400)
        strategy = {"second": "only_second", "first": "only_first"}.get(self.truncate, "longest_first") \
            if second is not None else "longest_first"  # ES "balanced" ~ longest_first
        self.tokenizer.enable_truncation(self.max_length, strategy=strategy)
        try:
            cut = self.tokenizer.encode(first, second, add_special_tokens=self.with_special)
        except Exception as exc:  # the sequence to truncate is too short to absorb the excess
            raise StatusException(f"Input too large. The tokenized input length [{len(full.ids)}] exceeds the "
                                  f"maximum sequence length [{self.max_length}]", 400) from exc
        finally:
            self.tokenizer.no_truncation()
        return Encoded(list(cut.ids), list(cut.type_ids), True)


    def windows(self, first: str, second: str | None = None) -> list[Encoded]:
        """ES windowing (truncate=none with a span): split the (second) sequence into overlapping windows of whole
        words, each paired with the whole first sequence (NlpTokenizer.tokenize with span)."""
        self.tokenizer.no_truncation()
        whole = self.tokenizer.encode(first, second, add_special_tokens=self.with_special)
        if self.span == -1 or self.truncate != "none" or len(whole.ids) <= self.max_length:
            return [self.encode(first, second)]
        pair = second is not None
        head = self.tokenizer.encode(first, add_special_tokens=False) if pair else None
        body = self.tokenizer.encode(second if pair else first, add_special_tokens=False)
        specials = self.with_special and self.cls is not None and self.sep is not None
        extra = (3 if pair else 2) if specials else 0
        room = self.max_length - (len(head.ids) if head else 0) - extra
        if room <= 0:
            raise StatusException(f"Unable to do sequence pair tokenization: the first sequence [{len(head.ids)} "
                                  f"tokens] is longer than the max sequence length [{self.max_length}]", 400)
        words, ids, out, start = body.word_ids, body.ids, [], 0
        while True:
            end = min(start + room, len(ids))
            while end < len(ids) and end > start + 1 and words[end] == words[end - 1]:
                end -= 1  # never end a window inside a word
            window = ids[start:end]
            if head is not None:
                prefix = ([self.cls] + head.ids + [self.sep]) if specials else list(head.ids)
                suffix = [self.sep] if specials else []
                out.append(Encoded(prefix + window + suffix, [0] * len(prefix) + [1] * (len(window) + len(suffix)),
                                   False))
            else:
                tokens = ([self.cls] + window + [self.sep]) if specials else window
                out.append(Encoded(tokens, [0] * len(tokens), False))
            if end >= len(ids):
                return out
            start = max(end - self.span, start + 1)


class LoadedModel:
    """A TorchScript module plus its tokenizer: what a started deployment holds in memory."""

    def __init__(self, definition: bytes, vocabulary: list[str], config: dict[str, Any]):
        import torch  # lazy: torch only loads when a deployment starts

        try:
            with _TORCH_LOCK:
                self.module = torch.jit.load(io.BytesIO(definition), map_location="cpu")
            self.module.eval()
        except Exception as exc:  # torch raises RuntimeError/ValueError/zip errors for corrupt bytes
            raise LoadError(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from exc
        self.torch = torch
        self.task, task_config = next(iter(config["inference_config"].items()))
        self.task_config = task_config
        self.tokenizer = WordPiece(vocabulary, task_config["tokenization"]) if vocabulary else None
        try:
            self.arity = len(self.module.forward.schema.arguments) - 1  # minus self
        except Exception:  # noqa: BLE001 - older TorchScript without a schema: assume the BERT signature
            self.arity = 4

    def _run(self, encoded: Encoded) -> Any:
        torch = self.torch
        ids = torch.tensor([encoded.ids], dtype=torch.long)
        inputs = (ids, torch.ones_like(ids), torch.tensor([encoded.type_ids], dtype=torch.long),
                  torch.arange(ids.size(1), dtype=torch.long).unsqueeze(0))
        with torch.no_grad():
            output = self.module(*inputs[: self.arity])
        if isinstance(output, (tuple, list)):
            output = output[0]
        return output

    def _require_tokenizer(self) -> WordPiece:
        if self.tokenizer is None:
            raise StatusException("Could not find vocabulary for the model", 400)
        return self.tokenizer

    def infer(self, text: str, update: dict[str, Any] | None = None) -> dict[str, Any]:
        """One document's result, shaped as ES's inference results for the model's task."""
        update = update or {}
        tokenizer = self._require_tokenizer()
        results_field = update.get("results_field") or self.task_config.get("results_field") or "predicted_value"
        if self.task == "text_similarity":
            query = update.get("text")
            if query is None:
                raise StatusException("please provide configuration update for text_similarity task including "
                                      "the desired [text]", 400)
            spans = tokenizer.windows(query, text)
            values = []
            for encoded in spans:
                logits = self._run(encoded)[0].tolist()
                if len(logits) != 1:
                    # ES TextSimilarityProcessor: cross-encoders must output a single logit
                    raise StatusException(f"Expected exactly [1] value in text_similarity result; got "
                                          f"[{len(logits)}]", 409)
                values.append(float(logits[0]))
            # ES: span_score_combination_function combines the windows' scores (max by default)
            combine = self.task_config.get("span_score_combination_function", "max")
            score = max(values) if combine == "max" else sum(values) / len(values)
            result: dict[str, Any] = {results_field: score}
            encoded = spans[0] if len(spans) == 1 else Encoded([], [], False)
        else:
            encoded = tokenizer.encode(text)
            output = self._run(encoded)
            values = output.tolist()
            if self.task in ("text_embedding", "pass_through") and output.dim() == 3:
                values = values[0][0] if self.task == "text_embedding" else values[0]
            elif output.dim() >= 2:
                values = values[0] if self.task == "text_embedding" else values
            result = {results_field: values}
        if encoded.truncated:
            result["is_truncated"] = True
        return result


def rerank_scores(model: LoadedModel, query: str, texts: list[str]) -> list[float]:
    """Raw text_similarity scores of (query, text) pairs, in input order."""
    if model.task != "text_similarity":
        raise EsError(f"Trained model [{model.task}] is not a text_similarity model", status=400,
                      type="status_exception")
    scores = []
    for text in texts:
        value = model.infer(text, {"text": query, "results_field": "predicted_value"})["predicted_value"]
        scores.append(value if math.isfinite(value) else 0.0)
    return scores
