"""Ranking metrics, computed exactly as Elasticsearch's `_rank_eval` computes them (modules/rank-eval, 9.x), so that
the two ways of evaluating a variant (`_rank_eval`, or one `_msearch` scored here) give the same numbers.

Input of every metric: `ranked`, the document ids a search returned in order (only the first k are read), and
`grades`, the judged documents of the query (id -> grade, an integer >= 0). A returned document with no judgment is
"unrated". A document is *relevant* when its grade >= 1 (ES's `relevant_rating_threshold`, default 1).

- **NDCG@k** (ES `dcg` with `normalize: true`, DiscountedCumulativeGain.java):
  DCG@k = sum over ranks i = 1..min(k, hits) of (2^grade_i - 1) / log2(i + 1), an unrated hit adding 0 (it still
  takes its rank). The ideal DCG is the DCG of the judged grades sorted descending, cut to as many entries as the
  search returned hits (min(k, hits)), not to k: a search that returns 2 hits is compared with the ideal 2.
  NDCG = DCG / ideal DCG, and 0 when the ideal DCG is 0 (no judged document is relevant, or no hits).
- **MRR@k** (ES `mean_reciprocal_rank`, MeanReciprocalRank.java): per query 1 / rank of the first relevant hit
  within the first k, 0 when none; the mean over queries is the MRR.
- **recall@k** (ES `recall`, RecallAtK.java): relevant hits within the first k / relevant judged documents
  (0 when the query has no relevant judgment).
- **precision@k** (ES `precision`, PrecisionAtK.java, `ignore_unlabeled: false`): relevant hits within the first k
  / hits within the first k, unrated hits counting as not relevant; 0 when there are no hits. The divisor is
  the number of hits returned (up to k), not k: a query returning 3 hits, all relevant, has precision@10 = 1.

Ties in score are ordered by the search engine (the hits' order is what is scored). The value of a variant is the
mean of its per-query values (ES `EvaluationMetric.combine`), every query counting once.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

RELEVANT = 1  # ES's default relevant_rating_threshold
NAMES = ("ndcg", "mrr", "recall", "precision")
METRIC_PATTERN = re.compile(r"^(ndcg|mrr|recall|precision)@([1-9][0-9]*)$")
# the `_rank_eval` metric of each, with its parameters
RANK_EVAL_METRIC = {"ndcg": ("dcg", {"normalize": True}), "mrr": ("mean_reciprocal_rank", {}),
                    "recall": ("recall", {}), "precision": ("precision", {"ignore_unlabeled": False})}


@dataclass(frozen=True)
class Metric:
    name: str  # ndcg, mrr, recall, precision
    k: int

    @property
    def label(self) -> str:
        return f"{self.name}@{self.k}"

    @classmethod
    def parse(cls, text: str) -> Metric:
        match = METRIC_PATTERN.match(text)
        if not match:
            raise ValueError(f"unknown metric {text!r}: write ndcg@K, mrr@K, recall@K or precision@K")
        return cls(match.group(1), int(match.group(2)))

    def rank_eval_body(self) -> dict:
        name, params = RANK_EVAL_METRIC[self.name]
        return {name: {**params, "k": self.k}}

    def score(self, ranked: Sequence[str], grades: Mapping[str, int]) -> float:
        return SCORERS[self.name](ranked, grades, self.k)


def _dcg(gains: Sequence[int | None]) -> float:
    return sum((2 ** g - 1) / math.log2(rank + 1) for rank, g in enumerate(gains, 1) if g is not None)


def ndcg(ranked: Sequence[str], grades: Mapping[str, int], k: int) -> float:
    top = [grades.get(doc) for doc in ranked[:k]]
    ideal = sorted(grades.values(), reverse=True)[:len(top)]
    best = _dcg(ideal)
    return _dcg(top) / best if best else 0.0


def reciprocal_rank(ranked: Sequence[str], grades: Mapping[str, int], k: int) -> float:
    for rank, doc in enumerate(ranked[:k], 1):
        if grades.get(doc, -1) >= RELEVANT:
            return 1.0 / rank
    return 0.0


def recall(ranked: Sequence[str], grades: Mapping[str, int], k: int) -> float:
    relevant = sum(1 for g in grades.values() if g >= RELEVANT)
    found = sum(1 for doc in ranked[:k] if grades.get(doc, -1) >= RELEVANT)
    return found / relevant if relevant else 0.0


def precision(ranked: Sequence[str], grades: Mapping[str, int], k: int) -> float:
    top = ranked[:k]
    found = sum(1 for doc in top if grades.get(doc, -1) >= RELEVANT)
    return found / len(top) if top else 0.0


SCORERS = {"ndcg": ndcg, "mrr": reciprocal_rank, "recall": recall, "precision": precision}


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0
