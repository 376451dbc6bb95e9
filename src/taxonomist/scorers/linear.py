"""Dense linear scorer: one ridge head per label on frozen embeddings, anchored on the label's text.

W = (XᵀX + αI)⁻¹ (XᵀY + α·Tᵀ): the closed form of ridge regression pulled towards the label-text vectors T
instead of towards zero, so a label with no examples keeps its zero-shot direction (scaled) and one with
many is fitted to its documents. All labels are solved at once (a d × d system), whatever their number,
and the sufficient statistics XᵀX and XᵀY make new examples and new labels an exact, cheap update.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from ..labels import LabelSet
from ..state import from_params, params_of, read_state, write_state
from .base import EXAMPLES, Batch, FitInput, candidate_dots


@dataclass
class LinearScorer:
    name: ClassVar[str] = "linear"
    needs: ClassVar[frozenset[str]] = frozenset({EXAMPLES})
    proposes: ClassVar[bool] = False
    fusion_only: ClassVar[bool] = False
    retrieval: ClassVar[int | None] = None

    alpha: float = 1.0

    def fit(self, data: FitInput) -> "LinearScorer":
        d = data.vectors.shape[1]
        self.anchors_ = np.asarray(data.label_vectors, dtype=np.float32)
        self.gram_ = np.zeros((d, d), dtype=np.float64)
        self.cross_ = np.zeros((d, len(self.anchors_)), dtype=np.float64)
        return self._fold_in(data)

    def update(self, data: FitInput) -> "LinearScorer":
        return copy.copy(self)._fold_in(data)

    def _fold_in(self, data: FitInput) -> "LinearScorer":
        vectors = np.asarray(data.vectors, dtype=np.float64)
        self.gram_ = self.gram_ + vectors.T @ vectors
        self.cross_ = self.cross_ + np.asarray((data.targets.T @ vectors).T)
        self.coef_ = self._solve(self.cross_ + self.alpha * self.anchors_.T)
        return self

    def add_labels(self, data: FitInput, start: int) -> "LinearScorer":
        text_vectors = np.asarray(data.label_vectors[start:], dtype=np.float32)
        grown = copy.copy(self)
        grown.anchors_ = np.vstack([self.anchors_, text_vectors])
        grown.cross_ = np.hstack([self.cross_, np.zeros((self.cross_.shape[0], len(text_vectors)))])
        grown.coef_ = np.vstack([self.coef_, self._solve(self.alpha * text_vectors.T)])
        return grown

    def _solve(self, rhs: np.ndarray) -> np.ndarray:
        """Heads for the right-hand sides' columns, label-major (L, d): scoring gathers rows."""
        system = self.gram_ + self.alpha * np.eye(len(self.gram_))
        return np.ascontiguousarray(np.linalg.solve(system, rhs).T, dtype=np.float32)

    def score(self, batch: Batch, candidates: np.ndarray) -> np.ndarray:
        return candidate_dots(batch.vectors, self.coef_, candidates)

    def save(self, folder: Path) -> None:
        write_state(folder, params=params_of(self), anchors=self.anchors_, gram=self.gram_, cross=self.cross_,
                    coef=self.coef_)

    @classmethod
    def load(cls, folder: Path, labels: LabelSet) -> "LinearScorer":
        state = read_state(folder)
        scorer = from_params(cls, state["params"])
        scorer.anchors_, scorer.gram_, scorer.cross_, scorer.coef_ = (state[k] for k in ("anchors", "gram", "cross",
                                                                                        "coef"))
        return scorer
