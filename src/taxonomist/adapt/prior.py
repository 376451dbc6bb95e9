"""Label priors from unlabeled text: EM re-estimation of label marginals (Saerens et al., 2002).

Similarity ignores how common a label is. Turning similarities into posteriors (softmax at a low
temperature) and averaging them over unlabeled documents estimates each label's share; reweighting and
repeating sharpens it. Cosine posteriors are not calibrated, so run to convergence the prior over-sharpens:
a few iterations are the default, and `strength` scales the log prior in the final score.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from ..scorers.base import gather
from ..state import from_params, params_of, read_state, write_state


def softmax_rows(logits: np.ndarray) -> np.ndarray:
    """Row softmax over candidates; -inf (padding) gets probability 0."""
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


@dataclass
class LabelPrior:
    name: ClassVar[str] = "prior"

    temperature: float = 0.05
    iterations: int = 1
    strength: float = 0.5
    pseudo_count: float = 1.0

    def fit(self, candidates: np.ndarray, sims: np.ndarray, n_labels: int) -> "LabelPrior":
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

    def split_half_reliability(self, candidates: np.ndarray, sims: np.ndarray, n_labels: int) -> float:
        """How far the pool's label shares are signal rather than sampling noise: the priors fitted on two random
        halves of the pool, correlated (Pearson, log priors, over the labels either half shortlists) and stepped
        up to the whole pool (Spearman-Brown). Too few documents per label and the shares are noise."""
        order = np.random.default_rng(0).permutation(len(candidates))
        halves = order[: len(order) // 2], order[len(order) // 2:]
        fitted = [copy.copy(self).fit(candidates[h], sims[h], n_labels).log_prior_ for h in halves]
        seen = np.zeros(n_labels, dtype=bool)
        seen[candidates[candidates >= 0]] = True
        if seen.sum() < 3:
            return 0.0
        r = float(np.corrcoef(fitted[0][seen], fitted[1][seen])[0, 1])
        return 0.0 if not np.isfinite(r) or r <= 0 else 2 * r / (1 + r)

    def logits(self, candidates: np.ndarray) -> np.ndarray:
        """The log prior, scaled by `strength`, at the candidates; -inf at padding."""
        return self.strength * gather(self.log_prior_, candidates, fill=-np.inf)

    def add_labels(self, n_new: int) -> "LabelPrior":
        """Labels the pool never saw get the smallest prior any label has."""
        grown = copy.copy(self)
        grown.log_prior_ = np.concatenate([self.log_prior_, np.full(n_new, self.log_prior_.min())])
        return grown

    def save(self, folder: Path) -> None:
        write_state(folder, params=params_of(self), log_prior=self.log_prior_)

    @classmethod
    def load(cls, folder: Path) -> "LabelPrior":
        state = read_state(folder)
        prior = from_params(cls, state["params"])
        prior.log_prior_ = state["log_prior"]
        return prior
