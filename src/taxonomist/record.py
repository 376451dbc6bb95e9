"""The out-of-fold record: what training learned about its own scores on examples it had not seen.

Cross-fitting (train/cross_fit.py) scores each held-out fold with scorers fitted without it. The record keeps,
per held-out document, the candidates those scorers proposed, every scorer's score there, the candidates'
example counts in that fold and the document's gold labels, with its row among the training examples. The
fusion learns from it; calibration, conformal label sets and the label-error audit need the same pairs, so
it is kept with the model. Gold labels outside the candidates are kept too: such a label was missed, which a
coverage guarantee must count.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from .sparse import csr_lookup
from .state import read_state, write_state


@dataclass(frozen=True)
class OutOfFold:
    """`rows` (n,): each held-out document's index among the training examples; `candidates` (n, C): label
    positions, -1 pads; `scores`: name -> (n, C), -inf at padding, in the order the fusion learnt them; `counts`
    (n, C): the candidates' example counts in the fold that scored them; `gold` (n, L): the documents' labels."""

    rows: np.ndarray
    candidates: np.ndarray
    scores: dict[str, np.ndarray]
    counts: np.ndarray
    gold: sp.csr_matrix

    @property
    def truth(self) -> np.ndarray:
        """(n, C) bool: which candidates are gold labels of their document."""
        return csr_lookup(self.gold, self.candidates) > 0

    @classmethod
    def concat(cls, parts: Sequence["OutOfFold"]) -> "OutOfFold":
        """Folds stacked in order, padded to the widest candidate list."""
        width = max(p.candidates.shape[1] for p in parts)

        def stack(arrays: list[np.ndarray], fill) -> np.ndarray:
            return np.vstack([np.pad(a, ((0, 0), (0, width - a.shape[1])), constant_values=fill) for a in arrays])

        return cls(rows=np.concatenate([p.rows for p in parts]),
                   candidates=stack([p.candidates for p in parts], -1),
                   scores={name: stack([p.scores[name] for p in parts], -np.inf) for name in parts[0].scores},
                   counts=stack([p.counts for p in parts], 0), gold=sp.vstack([p.gold for p in parts], format="csr"))

    def save(self, folder: Path) -> None:
        write_state(folder, names=list(self.scores), rows=self.rows, candidates=self.candidates, counts=self.counts,
                    gold=self.gold, **{f"score.{name}": values for name, values in self.scores.items()})

    @classmethod
    def load(cls, folder: Path) -> "OutOfFold":
        state = read_state(folder)
        return cls(rows=state["rows"], candidates=state["candidates"], counts=state["counts"], gold=state["gold"],
                   scores={name: state[f"score.{name}"] for name in state["names"]})
