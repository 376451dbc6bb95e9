"""Label priors from unlabeled text: EM re-estimation of label marginals (Saerens et al., 2002).

Similarity ignores how common a label is. Turning similarities into posteriors (softmax at a low
temperature) and averaging them over unlabeled documents estimates each label's share; reweighting and
repeating sharpens it. Cosine posteriors are not calibrated, so run to convergence the prior over-sharpens:
a few iterations are the default, and `strength` scales the log prior in the final score.
"""

from __future__ import annotations

import numpy as np

from . import Batch, gather


def softmax_rows(logits: np.ndarray) -> np.ndarray:
    """Row softmax over candidates; -inf (padding) gets probability 0."""
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class PriorScorer:
    def __init__(
        self, temperature: float = 0.05, iterations: int = 1, strength: float = 0.5, pseudo_count: float = 1.0
    ) -> None:
        self.temperature = temperature
        self.iterations = iterations
        self.strength = strength
        self.pseudo_count = pseudo_count

    def fit(self, candidates: np.ndarray, sims: np.ndarray, n_labels: int) -> "PriorScorer":
        """Estimate priors from unlabeled documents' shortlists (positions, similarities)."""
        valid = candidates >= 0
        cols = candidates[valid]
        prior = np.full(n_labels, 1.0 / n_labels)
        base = sims / self.temperature
        for _ in range(self.iterations):
            post = softmax_rows(base + np.log(gather(prior, candidates, fill=1.0)))
            mass = np.bincount(cols, weights=post[valid], minlength=n_labels)
            prior = (mass + self.pseudo_count) / (len(candidates) + self.pseudo_count * n_labels)
        self.log_prior_ = np.log(prior).astype(np.float32)
        return self

    def score(self, batch: Batch, candidates: np.ndarray) -> np.ndarray:
        return self.strength * gather(self.log_prior_, candidates, fill=-np.inf)
