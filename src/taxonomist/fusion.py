"""Fusion: how much to trust each scorer, learned from held-out examples, by label-frequency band.

Each (document, candidate label) pair becomes a row of features — every scorer's score, the label's example
count, its frequency band, and each score interacted with the band — and a logistic regression learns from
held-out documents (scored by scorers that never saw them: cross-fitting) which pairs are right. The band
interactions let a label with no examples lean on its text while a frequent one leans on the supervised
scorers; shared weights cover bands the held-out data never reached (labels added after training).
The output is a log-odds per pair, so sigmoid(score) is the probability that the label applies.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import scipy.sparse as sp

# Lower edges of the label-frequency bands: no examples, 1-4, 5-19, 20 or more.
BANDS = np.array([0, 1, 5, 20])


class Fusion:
    def __init__(self, regularisation: float = 1.0, max_rows: int = 1_000_000, random_state: int = 0) -> None:
        self.regularisation = regularisation
        self.max_rows = max_rows
        self.random_state = random_state

    def fit(self, scores: Mapping[str, np.ndarray], counts: np.ndarray, truth: np.ndarray,
            weights: np.ndarray | None = None) -> "Fusion":
        """Scores (n, C) per scorer at the same candidates (-inf = padding), the candidates' example counts
        (n, C), whether each candidate is a gold label of its document (bool (n, C)) and, optionally, a
        weight per document."""
        from sklearn.linear_model import LogisticRegression

        self.scorers_ = tuple(scores)
        valid = np.isfinite(next(iter(scores.values())))
        features = self._features(scores, counts)[valid.ravel()]
        target = truth[valid]
        row_weights = None if weights is None else np.broadcast_to(weights[:, None], truth.shape)[valid]
        rng = np.random.default_rng(self.random_state)
        if len(target) > self.max_rows:
            keep = rng.choice(len(target), self.max_rows, replace=False)
            features, target = features[keep], target[keep]
            row_weights = None if row_weights is None else row_weights[keep]
        self.mean_ = features.mean(axis=0)
        self.scale_ = np.where(features.std(axis=0) > 0, features.std(axis=0), 1.0)
        model = LogisticRegression(C=self.regularisation, max_iter=1000)
        model.fit((features - self.mean_) / self.scale_, target, sample_weight=row_weights)
        self.coef_ = model.coef_.ravel().astype(np.float32)
        self.intercept_ = float(model.intercept_[0])
        return self

    def decision(self, scores: Mapping[str, np.ndarray], counts: np.ndarray) -> np.ndarray:
        """Log-odds (n, C) that each candidate applies; -inf at padding.

        The model is linear in the features, so each band folds into one weight per base column and an
        offset: a pair's log-odds is its band's offset plus its base columns times its band's weights, and
        the (pairs × features) matrix of `fit` (~40 columns) is never built.
        """
        weights, offsets = self._band_weights()
        band = _band(counts)
        logits = offsets[band]
        for j, column in enumerate(self._base(scores, counts)):
            logits += weights[band, j] * column
        return np.where(np.isfinite(scores[self.scorers_[0]]), logits, -np.inf)

    def _band_weights(self) -> tuple[np.ndarray, np.ndarray]:
        """Per band, the weight of each base column and the offset, standardisation folded in."""
        n_bands, n_base = len(BANDS), len(self.scorers_) + 1
        raw = self.coef_.astype(np.float64) / self.scale_  # weight per unstandardised feature
        offset = self.intercept_ - float(raw @ self.mean_)
        base, onehot, interactions = np.split(raw, [n_base, n_base + n_bands])
        weights = (base + interactions.reshape(n_bands, n_base)).astype(np.float32)
        return weights, (offset + onehot).astype(np.float32)

    def _base(self, scores: Mapping[str, np.ndarray], counts: np.ndarray) -> list[np.ndarray]:
        """Each scorer's score (0 at padding) and log1p(example count): the columns bands interact with."""
        return [np.nan_to_num(scores[name], neginf=0.0).astype(np.float32, copy=False) for name in self.scorers_] + [
            np.log1p(counts).astype(np.float32, copy=False)]

    def _features(self, scores: Mapping[str, np.ndarray], counts: np.ndarray) -> np.ndarray:
        base = np.column_stack([column.ravel() for column in self._base(scores, counts)])
        onehot = np.eye(len(BANDS), dtype=np.float32)[_band(counts).ravel()]
        interactions = (onehot[:, :, None] * base[:, None, :]).reshape(len(base), -1)
        return np.hstack([base, onehot, interactions])


def _band(counts: np.ndarray) -> np.ndarray:
    return np.searchsorted(BANDS, counts, side="right") - 1


def label_counts(targets: sp.csr_matrix) -> np.ndarray:
    """Examples per label (float32 (L,))."""
    return np.asarray(targets.sum(axis=0), dtype=np.float32).ravel()
