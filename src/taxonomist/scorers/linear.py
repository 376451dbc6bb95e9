"""Dense linear scorer: one ridge head per label on frozen embeddings, anchored on the label's text.

W = (XᵀX + αI)⁻¹ (XᵀY + α·Tᵀ): the closed form of ridge regression pulled towards the label-text vectors T
instead of towards zero, so a label with no examples keeps its zero-shot direction (scaled) and one with
many is fitted to its documents. All labels are solved at once (a d × d system), whatever their number,
and the sufficient statistics XᵀX and XᵀY make new examples and new labels an exact, cheap update.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from . import Batch, candidate_dots


class LinearScorer:
    def __init__(self, alpha: float = 1.0) -> None:
        self.alpha = alpha

    def fit(self, text_vectors: np.ndarray, vectors: np.ndarray, targets: sp.csr_matrix) -> "LinearScorer":
        d = vectors.shape[1]
        self.anchors_ = np.asarray(text_vectors, dtype=np.float32)
        self.gram_ = np.zeros((d, d), dtype=np.float64)
        self.cross_ = np.zeros((d, len(self.anchors_)), dtype=np.float64)
        return self.update(vectors, targets)

    def update(self, vectors: np.ndarray, targets: sp.csr_matrix) -> "LinearScorer":
        vectors = np.asarray(vectors, dtype=np.float64)
        self.gram_ += vectors.T @ vectors
        self.cross_ += np.asarray((targets.T @ vectors).T)
        self.coef_ = self._solve(self.cross_ + self.alpha * self.anchors_.T)
        return self

    def add_labels(self, text_vectors: np.ndarray) -> None:
        text_vectors = np.asarray(text_vectors, dtype=np.float32)
        self.anchors_ = np.vstack([self.anchors_, text_vectors])
        self.cross_ = np.hstack([self.cross_, np.zeros((self.cross_.shape[0], len(text_vectors)))])
        self.coef_ = np.vstack([self.coef_, self._solve(self.alpha * text_vectors.T)])

    def _solve(self, rhs: np.ndarray) -> np.ndarray:
        """Heads for the right-hand sides' columns, label-major (L, d): scoring gathers rows."""
        system = self.gram_ + self.alpha * np.eye(len(self.gram_))
        return np.ascontiguousarray(np.linalg.solve(system, rhs).T, dtype=np.float32)

    def score(self, batch: Batch, candidates: np.ndarray) -> np.ndarray:
        return candidate_dots(batch.vectors, self.coef_, candidates)
