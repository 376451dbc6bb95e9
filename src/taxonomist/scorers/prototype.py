"""Few-shot scorer: each label's vector moves from its text towards the mean of its examples.

PRIME-style shrinkage: prototype = normalise((1 − w)·text + w·mean(examples)), w = n / (n + shrinkage).
One example nudges a label away from its name; fifty make it what its documents look like. Sums and
counts are kept, so new examples and new labels fold in without refitting.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..encoders.base import l2_normalize
from ..index import LabelIndex
from . import Batch, candidate_dots


class PrototypeScorer:
    def __init__(self, shrinkage: float = 4.0) -> None:
        self.shrinkage = shrinkage

    def fit(self, text_vectors: np.ndarray, vectors: np.ndarray, targets: sp.csr_matrix) -> "PrototypeScorer":
        """Label text vectors (L, d); example vectors (n, d) with their labels as a 0/1 (n, L) matrix."""
        self.text_vectors_ = np.asarray(text_vectors, dtype=np.float32)
        self.sums_ = np.zeros_like(self.text_vectors_)
        self.counts_ = np.zeros(len(self.text_vectors_), dtype=np.float32)
        return self.update(vectors, targets)

    def update(self, vectors: np.ndarray, targets: sp.csr_matrix) -> "PrototypeScorer":
        self.sums_ += np.asarray(targets.T @ vectors, dtype=np.float32)
        self.counts_ += np.asarray(targets.sum(axis=0), dtype=np.float32).ravel()
        return self._rebuild()

    def add_labels(self, text_vectors: np.ndarray) -> None:
        self.text_vectors_ = np.vstack([self.text_vectors_, text_vectors]).astype(np.float32)
        self.sums_ = np.vstack([self.sums_, np.zeros_like(text_vectors, dtype=np.float32)])
        self.counts_ = np.concatenate([self.counts_, np.zeros(len(text_vectors), dtype=np.float32)])
        self._rebuild()

    def _rebuild(self) -> "PrototypeScorer":
        weight = (self.counts_ / (self.counts_ + self.shrinkage))[:, None]
        means = self.sums_ / np.maximum(self.counts_, 1)[:, None]
        self.index_ = LabelIndex(l2_normalize((1 - weight) * self.text_vectors_ + weight * l2_normalize(means)))
        return self

    def shortlist(self, batch: Batch, size: int) -> tuple[np.ndarray, np.ndarray]:
        return self.index_.search(batch.vectors, size)

    def score(self, batch: Batch, candidates: np.ndarray) -> np.ndarray:
        return candidate_dots(batch.vectors, self.index_.vectors, candidates)
