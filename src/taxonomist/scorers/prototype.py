"""Few-shot scorer: each label's vector moves from its text towards the mean of its examples.

PRIME-style shrinkage: prototype = normalise((1 − w)·text + w·mean(examples)), w = n / (n + shrinkage).
One example nudges a label away from its name; fifty make it what its documents look like. Sums and
counts are kept, so new examples and new labels fold in without refitting.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from ..encoders.base import l2_normalize
from ..index import LabelIndex
from ..labels import LabelSet
from ..state import from_params, params_of, read_state, write_state
from .base import EXAMPLES, Batch, FitInput, candidate_dots


@dataclass
class PrototypeScorer:
    name: ClassVar[str] = "prototypes"
    needs: ClassVar[frozenset[str]] = frozenset({EXAMPLES})
    proposes: ClassVar[bool] = False
    fusion_only: ClassVar[bool] = False
    retrieval: ClassVar[int | None] = 0  # once there are examples, the prototypes shortlist before the label texts

    shrinkage: float = 4.0

    def fit(self, data: FitInput) -> "PrototypeScorer":
        """From the label text vectors (L, d) and the example vectors (n, d) with their 0/1 (n, L) targets."""
        self.text_vectors_ = np.asarray(data.label_vectors, dtype=np.float32)
        self.sums_ = np.zeros_like(self.text_vectors_)
        self.counts_ = np.zeros(len(self.text_vectors_), dtype=np.float32)
        return self._fold_in(data)

    def update(self, data: FitInput) -> "PrototypeScorer":
        return copy.copy(self)._fold_in(data)

    def _fold_in(self, data: FitInput) -> "PrototypeScorer":
        self.sums_ = self.sums_ + np.asarray(data.targets.T @ data.vectors, dtype=np.float32)
        self.counts_ = self.counts_ + np.asarray(data.targets.sum(axis=0), dtype=np.float32).ravel()
        return self._rebuild()

    def add_labels(self, data: FitInput, start: int) -> "PrototypeScorer":
        text_vectors = np.asarray(data.label_vectors[start:], dtype=np.float32)
        grown = copy.copy(self)
        grown.text_vectors_ = np.vstack([self.text_vectors_, text_vectors]).astype(np.float32)
        grown.sums_ = np.vstack([self.sums_, np.zeros_like(text_vectors)])
        grown.counts_ = np.concatenate([self.counts_, np.zeros(len(text_vectors), dtype=np.float32)])
        return grown._rebuild()

    def _rebuild(self) -> "PrototypeScorer":
        weight = (self.counts_ / (self.counts_ + self.shrinkage))[:, None]
        means = self.sums_ / np.maximum(self.counts_, 1)[:, None]
        self.index_ = LabelIndex(l2_normalize((1 - weight) * self.text_vectors_ + weight * l2_normalize(means)))
        return self

    def shortlist(self, batch: Batch, size: int) -> tuple[np.ndarray, np.ndarray]:
        return self.index_.search(batch.vectors, size)

    def score(self, batch: Batch, candidates: np.ndarray) -> np.ndarray:
        return candidate_dots(batch.vectors, self.index_.vectors, candidates)

    def save(self, folder: Path) -> None:
        write_state(folder, params=params_of(self), text_vectors=self.text_vectors_, sums=self.sums_,
                    counts=self.counts_)

    @classmethod
    def load(cls, folder: Path, labels: LabelSet) -> "PrototypeScorer":
        state = read_state(folder)
        scorer = from_params(cls, state["params"])
        scorer.text_vectors_, scorer.sums_, scorer.counts_ = state["text_vectors"], state["sums"], state["counts"]
        return scorer._rebuild()
