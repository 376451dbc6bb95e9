"""Lexical scorer: where a label's own words appear in the document (the idea of Annif's MLLM backend).

Embeddings blur a label name into its neighbourhood; an indexer reads the name itself. A label's terms are
its name, the comma- or semicolon-separated parts of its name (thesauri list synonyms that way: "person,
individual, someone") and its aliases; a document's score for a label sums 1 / (1 + position / SPAN) over
the places where one of its terms occurs, so an early mention (a title, a definition's head) counts more
than a late one. It learns nothing from examples. With examples, its evidence counts through the fusion, which
the examples teach how far to trust it; without, a mention adds RankConfig.mention_weight to the label's
similarity (Scoring.candidates).
"""

from __future__ import annotations

import copy
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from ..labels import Label, LabelSet
from ..sparse import csr_lookup
from ..state import from_params, params_of, read_state, write_state
from .base import LABEL_TEXTS, Batch, FitInput

WORD = re.compile(r"\w+")
SEPARATORS = re.compile(r"[,;]")
MAX_TERM_WORDS = 6  # longer names are left to the embeddings: they rarely occur verbatim


def normalise(word: str) -> str:
    """Lower case without a plural -s, so "compilers" matches the label "compiler"."""
    word = word.lower()
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def terms_of(label: Label) -> set[tuple[str, ...]]:
    names = [label.name, *SEPARATORS.split(label.name), *label.aliases]
    terms = {tuple(normalise(w) for w in WORD.findall(name)) for name in names}
    return {t for t in terms if 0 < len(t) <= MAX_TERM_WORDS}


@dataclass
class LexicalScorer:
    """`span`: words; a mention this far into the document counts half as much as one at the start."""

    name: ClassVar[str] = "lexical"
    needs: ClassVar[frozenset[str]] = frozenset({LABEL_TEXTS})
    proposes: ClassVar[bool] = False
    fusion_only: ClassVar[bool] = False
    retrieval: ClassVar[int | None] = None

    span: float = 20.0

    def fit(self, data: FitInput) -> "LexicalScorer":
        self.terms_: dict[tuple[str, ...], list[int]] = defaultdict(list)
        self.prefixes_: set[tuple[str, ...]] = set()  # every term's leading words: a scan stops where none goes on
        self.n_labels_ = 0
        self._index(data.labels)
        return self

    def _index(self, label_set: LabelSet) -> None:
        """Index the labels appended to the label set since the last call."""
        for i in range(self.n_labels_, len(label_set)):
            for term in terms_of(label_set[i]):
                self.terms_[term].append(i)
                self.prefixes_.update(term[:n] for n in range(1, len(term) + 1))
        self.n_labels_ = len(label_set)

    def add_labels(self, data: FitInput, start: int) -> "LexicalScorer":
        grown = copy.deepcopy(self)
        grown._index(data.labels)
        return grown

    def mentions(self, texts: list[str]) -> sp.csr_matrix:
        """(n, L) position-weighted mention counts."""
        rows, cols, values = [], [], []
        terms, prefixes, seen = self.terms_, self.prefixes_, {}
        for row, text in enumerate(texts):
            words = [seen.get(w) or seen.setdefault(w, normalise(w)) for w in WORD.findall(text)]
            for start in range(len(words)):
                stop = start + 1
                while stop <= len(words) and (term := tuple(words[start:stop])) in prefixes:
                    for label in terms.get(term, ()):
                        rows.append(row)
                        cols.append(label)
                        values.append(1.0 / (1.0 + start / self.span))
                    stop += 1
        matrix = sp.csr_matrix((np.asarray(values, np.float32), (rows, cols)), shape=(len(texts), self.n_labels_))
        matrix.sum_duplicates()
        return matrix

    def score(self, batch: Batch, candidates: np.ndarray) -> np.ndarray:
        """log1p of the weighted mentions: a label named ten times is surer than one named once, not ten times."""
        mentions = batch.cached((id(self), "mentions"), lambda: self.mentions(batch.texts))  # scanned once a batch
        counts = csr_lookup(mentions, candidates)
        return np.where(candidates >= 0, np.log1p(np.maximum(counts, 0)), -np.inf).astype(np.float32)

    def save(self, folder: Path) -> None:
        """Only the parameters: the index is rebuilt from the labels, faster than it would be read."""
        write_state(folder, params=params_of(self))

    @classmethod
    def load(cls, folder: Path, labels: LabelSet) -> "LexicalScorer":
        return from_params(cls, read_state(folder)["params"]).fit(FitInput(labels=labels))
