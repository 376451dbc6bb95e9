"""Lexical scorer: where a label's own words appear in the document (the idea of Annif's MLLM backend).

Embeddings blur a label name into its neighbourhood; an indexer reads the name itself. A label's terms are
its name, the comma- or semicolon-separated parts of its name (thesauri list synonyms that way: "person,
individual, someone") and its aliases; a document's score for a label sums 1 / (1 + position / SPAN) over
the places where one of its terms occurs, so an early mention (a title, a definition's head) counts more
than a late one. It needs no examples; the fusion learns from held-out examples how far to trust it.
"""

from __future__ import annotations

import re
from collections import defaultdict

import numpy as np
import scipy.sparse as sp

from ..labels import Label, LabelSet
from ..sparse import csr_lookup
from . import Batch

WORD = re.compile(r"\w+")
SEPARATORS = re.compile(r"[,;]")
MAX_TERM_WORDS = 6  # longer names are left to the embeddings: they rarely occur verbatim
SPAN = 20  # words: a mention this far into the document counts half as much as one at the start


def normalise(word: str) -> str:
    """Lower case without a plural -s, so "compilers" matches the label "compiler"."""
    word = word.lower()
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def terms_of(label: Label) -> set[tuple[str, ...]]:
    names = [label.name, *SEPARATORS.split(label.name), *label.aliases]
    terms = {tuple(normalise(w) for w in WORD.findall(name)) for name in names}
    return {t for t in terms if 0 < len(t) <= MAX_TERM_WORDS}


class LexicalScorer:
    def fit(self, label_set: LabelSet) -> "LexicalScorer":
        self.terms_: dict[tuple[str, ...], list[int]] = defaultdict(list)
        self.prefixes_: set[tuple[str, ...]] = set()  # every term's leading words: a scan stops where none goes on
        self.n_labels_ = 0
        return self.add_labels(label_set)

    def add_labels(self, label_set: LabelSet) -> "LexicalScorer":
        """Index the labels appended to the label set since fit."""
        for i in range(self.n_labels_, len(label_set)):
            for term in terms_of(label_set[i]):
                self.terms_[term].append(i)
                self.prefixes_.update(term[:n] for n in range(1, len(term) + 1))
        self.n_labels_ = len(label_set)
        return self

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
                        values.append(1.0 / (1.0 + start / SPAN))
                    stop += 1
        matrix = sp.csr_matrix((np.asarray(values, np.float32), (rows, cols)), shape=(len(texts), self.n_labels_))
        matrix.sum_duplicates()
        return matrix

    def score(self, batch: Batch, candidates: np.ndarray) -> np.ndarray:
        """log1p of the weighted mentions: a label named ten times is surer than one named once, not ten times."""
        counts = csr_lookup(self.mentions(batch.texts), candidates)
        return np.where(candidates >= 0, np.log1p(np.maximum(counts, 0)), -np.inf).astype(np.float32)
