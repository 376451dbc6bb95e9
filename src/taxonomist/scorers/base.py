"""What every scorer promises, and what it is given.

A scorer is one way of knowing that a label fits a document. It is fitted on one typed input (`FitInput`: the
label set and its texts, labelled examples, or both) and scores (document, candidate label) pairs:
`score(batch, candidates)` takes the documents of one batch and, per document, the label positions to score
(int64 (n, C), -1 = padding) and returns float32 (n, C) with -inf at padding.

Scorers are registered by name (scorers/registry.py); the model loops over them and never names one. A fitted
scorer is read-only: `update` and `add_labels` return a new scorer and leave this one as it was, so a model can
be ranked with while its successor is being built.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar, runtime_checkable

import numpy as np
import scipy.sparse as sp

from ..errors import InputError

if TYPE_CHECKING:
    from ..encoders.base import Encoder
    from ..labels import LabelSet

T = TypeVar("T")
# What a scorer learns from (`Scorer.needs`): the label set's own texts, or labelled examples.
LABEL_TEXTS, EXAMPLES = "label_texts", "examples"


@dataclass
class Batch:
    """Documents as the scorers see them: texts for lexical scorers, vectors for dense ones.

    `inputs`: per scorer name, what it prepared for exactly these documents beforehand (a held-out fold's
    TF-IDF rows); `memo` keeps what one scorer computes once per batch for several uses (its own shortlist and
    its scores), so that a batch, not the model, holds per-request state."""

    texts: list[str]
    vectors: np.ndarray  # float32 (n, d), L2-normalised
    inputs: Mapping[str, Any] = field(default_factory=dict)
    memo: dict[str, Any] = field(default_factory=dict, repr=False)

    def cached(self, key: str, compute: Callable[[], T]) -> T:
        if key not in self.memo:
            self.memo[key] = compute()
        return self.memo[key]

    def rows(self, index: np.ndarray) -> "Batch":
        return Batch([self.texts[i] for i in index], self.vectors[index],
                     {name: value.rows(index) for name, value in self.inputs.items()})


def example_ids(ids: Sequence[str | None] | None, n_texts: int) -> list[str | None]:
    """The examples' document ids as FitInput keeps them ([] when none are given); one per text, or an error."""
    if ids is None:
        return []
    if len(ids) != n_texts:
        raise InputError("give one document id per text", fix="pass as many ids as texts, or none")
    return list(ids)


@dataclass(frozen=True)
class FitInput:
    """Everything a scorer may learn from; each reads only what its `needs` say.

    `label_vectors`: the label texts as the examples' encoder embeds them (the label-text scorer's, (L, d)), which
    supervised scorers are anchored on; `prepared`: what a scorer's `prepare` computed once on every example, so
    that the fits on held-out folds share it; `fold`: a held-out fold's fit, which only has to score like the
    final one (cheaper settings where a scorer has them); `ids`: the examples' document ids where known (empty, or
    None for one: not known), which explanations name."""

    labels: LabelSet | None = None
    encoder: Encoder | None = None
    contexts: tuple[str, ...] = ()
    label_vectors: np.ndarray | None = None
    texts: Sequence[str] = ()
    ids: Sequence[str | None] = ()
    vectors: np.ndarray | None = None
    targets: sp.csr_matrix | None = None
    prepared: Mapping[str, Any] = field(default_factory=dict)
    fold: bool = False
    random_state: int = 0
    show_progress: bool = False

    def rows(self, index: np.ndarray, *, fold: bool = True) -> "FitInput":
        """The same input restricted to some examples (a fold's training rows)."""
        return replace(self, texts=[self.texts[i] for i in index], ids=[self.ids[i] for i in index] if self.ids else (),
                       vectors=self.vectors[index], targets=self.targets[index], fold=fold,
                       prepared={name: value.rows(index) for name, value in self.prepared.items()})


@runtime_checkable
class Scorer(Protocol):
    """The protocol (see the module). Parameters are dataclass fields (typed, saved with the model); learned state
    ends in an underscore. Optional methods, looked up with hasattr:

    - `shortlist(batch, size) -> (positions, values)`: its own best labels per document, best first;
    - `update(data) -> Scorer`: a copy with more examples folded in (`data.targets` over the same labels);
    - `add_labels(data, start) -> Scorer`: a copy that knows the labels from position `start` on;
    - `prepare(data) -> Rows`: per-example input computed once for every fit of one training run (`.rows(index)`
      must slice it), found again in `FitInput.prepared[name]` and, for scored documents, `Batch.inputs[name]`.
    """

    name: ClassVar[str]
    needs: ClassVar[frozenset[str]]
    # Its shortlist joins the candidates that the fusion scores.
    proposes: ClassVar[bool]
    # Its evidence counts only through a fusion, so a model without examples does without it.
    fusion_only: ClassVar[bool]
    # Where it ranks as the zero-shot retriever (lower first; None: never): the retriever's shortlist and
    # similarities are what priors, propagation and self-training work on.
    retrieval: ClassVar[int | None]

    def fit(self, data: FitInput) -> "Scorer": ...

    def score(self, batch: Batch, candidates: np.ndarray) -> np.ndarray: ...

    def save(self, folder: Path) -> None: ...

    @classmethod
    def load(cls, folder: Path, labels: LabelSet) -> "Scorer": ...


def gather(per_label: np.ndarray, candidates: np.ndarray, fill: float = -np.inf) -> np.ndarray:
    """Per-label values at candidate positions, `fill` at padding (-1)."""
    out = per_label[np.maximum(candidates, 0)].astype(np.float32)
    out[candidates < 0] = fill
    return out


# Largest (rows, candidates, dim) block of gathered label vectors: one that stays in cache (4 MB measured 2.5×
# faster than 64 MB on 17k labels, 181 candidates; 256 KB is slower again).
GATHER_BYTES = 4 * 2**20
DENSE_FACTOR = 8  # score all labels densely when there are at most this many per candidate slot


def candidate_dots(queries: np.ndarray, label_vectors: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """queries[i] · label_vectors[candidates[i, j]] for every slot, -inf at padding (-1); rows are done in
    blocks so that the gathered (rows, C, d) label vectors stay within GATHER_BYTES whatever the batch."""
    n, c = candidates.shape
    if label_vectors.shape[0] <= DENSE_FACTOR * c:  # few labels: one product with all of them is faster
        out = np.take_along_axis(queries @ label_vectors.T, np.maximum(candidates, 0), axis=1).astype(np.float32)
        out[candidates < 0] = -np.inf
        return out
    out = np.empty((n, c), dtype=np.float32)
    step = max(1, GATHER_BYTES // max(1, c * label_vectors.shape[1] * label_vectors.itemsize))
    for start in range(0, n, step):
        block = candidates[start : start + step]
        gathered = label_vectors[np.maximum(block, 0)]
        out[start : start + step] = np.einsum("nd,ncd->nc", queries[start : start + step], gathered, optimize=True)
    out[candidates < 0] = -np.inf
    return out
