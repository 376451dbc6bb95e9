"""Hierarchy-aware scoring (CHiLS-style): a broader label is scored through its narrower ones.

A document about a specific thing matches its specific label's text best, yet its broader labels
("living thing" above "organism") apply too and their own texts are often too general to match. So a
parent's score is the best of its own and its children's scores, times `discount`; the shortlist is
extended by the ancestors of its best entries so those parents are scored at all.

discount 1.0 ("broad"): a parent ties with its best child and the label prior, which then favours the
parent that many documents reach, decides; right when documents are filed under broad labels (measured on
WordNet hypernyms: P@1 22 → 49 with the prior). discount < 1 ("specific"): parents rank right after their
matching children. "off": parents scored by their own text; right when documents carry their most specific
label, which is what most label sets' documents do (subject indexing, product categories, tickets), so the
default ("auto") is "off" unless the examples, or the documents themselves, show otherwise (trainer).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..errors import InputError
from ..labels import LabelSet
from ..sparse import union

# How a parent is scored through its children, by the name users choose it by; None: not at all. "auto" is
# decided per label set and corpus (choose_mode).
MODES = {"broad": 1.0, "specific": 0.9, "off": None}
CHOICES = ("auto", *MODES)
# With examples, "broad" when at least this share of the examples' labels that have a parent come with it.
BROAD_FROM_EXAMPLES = 0.5
# Without examples, "broad" only if it leaves the documents' first labels spread over at least this share of
# the distinct labels (effective number: exp of the entropy of the first-label counts) that "off" spreads
# them over: lifting parents that documents are not filed under makes a few broad labels take every document.
# Measured on development splits (train documents): emoji, whose documents carry only their subgroup, keeps
# 0.12 (7.6 of 61.4; P@1 0.0 with "broad", 42.9 "off", static encoder), wordnet-taxonomy, filed under
# ancestors too, 0.46 (794 of 1,742; P@1 42.3 against 18.9); 0.25 lies between them.
BROAD_MIN_SPREAD = 0.25


def examples_carry_ancestors(label_set: LabelSet, targets) -> float | None:
    """Of the examples' (document, label) pairs whose label has parents, the share whose document carries one of
    those parents too; None when no example's label has a parent."""
    import scipy.sparse as sp

    targets = sp.csr_matrix(targets)
    parents = label_set.parent_index
    with_parent = carried = 0
    for row in range(targets.shape[0]):
        gold = set(targets.indices[targets.indptr[row]:targets.indptr[row + 1]].tolist())
        for label in gold:
            if len(parents[label]):
                with_parent += 1
                carried += bool(gold.intersection(parents[label].tolist()))
    return carried / with_parent if with_parent else None


def effective_labels(first: np.ndarray) -> float:
    """exp(entropy) of how often each label is a document's first: how many labels share the documents."""
    counts = np.bincount(first[first >= 0])
    p = counts[counts > 0] / max(1, counts.sum())
    return float(np.exp(-(p * np.log(p)).sum())) if len(p) else 0.0


@dataclass
class Hierarchy:
    """Rebuilt from the labels, not saved: its parameters are the model's configuration."""

    name: ClassVar[str] = "hierarchy"

    discount: float = 1.0
    levels: int = 1
    expand_top: int = 10
    expand_levels: int = 2

    @classmethod
    def for_labels(cls, label_set: LabelSet, mode: str) -> "Hierarchy | None":
        """The hierarchy transform that `mode` (see MODES; "auto" decided already) asks for, or None (mode "off",
        or flat labels)."""
        if mode not in MODES:
            raise InputError(f"hierarchy must be one of {sorted(MODES)}, got {mode!r}",
                             fix="choose 'broad', 'specific' or 'off'")
        if MODES[mode] is None or not label_set.is_hierarchical:
            return None
        return cls(MODES[mode]).fit(label_set)

    def fit(self, label_set: LabelSet) -> "Hierarchy":
        parents = label_set.parent_index
        self.n_labels_ = len(label_set)
        self.parent_ptr_ = np.concatenate([[0], np.cumsum([len(p) for p in parents])]).astype(np.int64)
        self.parent_idx_ = np.concatenate(parents).astype(np.int64) if self.parent_ptr_[-1] else np.empty(0, np.int64)
        return self

    def _parents_of(self, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each entry of `labels`, its parents: (which entry, parent position)."""
        counts = self.parent_ptr_[labels + 1] - self.parent_ptr_[labels]
        owner = np.repeat(np.arange(len(labels)), counts)
        offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        return owner, self.parent_idx_[np.repeat(self.parent_ptr_[labels], counts) + offsets]

    def expand(self, candidates: np.ndarray) -> np.ndarray:
        """Add the ancestors (up to `expand_levels` up) of each row's best `expand_top` candidates."""
        frontier = candidates[:, : self.expand_top]
        added = []
        for _ in range(self.expand_levels):
            rows, cols = np.nonzero(frontier >= 0)
            owner, parents = self._parents_of(frontier[rows, cols])
            width = int(np.bincount(rows[owner], minlength=len(candidates)).max()) if len(owner) else 0
            if width == 0:
                break
            layer = np.full((len(candidates), width), -1, dtype=np.int64)
            row_of = rows[owner]
            slot = np.arange(len(row_of)) - np.searchsorted(row_of, row_of)  # rows come sorted from nonzero
            layer[row_of, slot] = parents
            added.append(layer)
            frontier = layer
        return union(candidates, *added) if added else candidates

    def lift(self, candidates: np.ndarray, sims: np.ndarray) -> np.ndarray:
        """Each candidate's score becomes max(own, discounted best child's score), `levels` times over.

        The discount takes (1 − discount)·|score| off, so it lowers negative scores too.
        """
        out = sims.copy()
        n, width = candidates.shape
        valid = candidates >= 0
        keys = np.where(valid, np.arange(n)[:, None] * self.n_labels_ + candidates, -1).ravel()
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        rows, cols = np.nonzero(valid)
        owner, parents = self._parents_of(candidates[rows, cols])
        parent_keys = rows[owner] * self.n_labels_ + parents
        hit = np.searchsorted(sorted_keys, parent_keys)
        hit = np.minimum(hit, len(sorted_keys) - 1)
        present = sorted_keys[hit] == parent_keys
        target = order[hit[present]]  # flat position of the parent within its row
        source = (rows * width + cols)[owner[present]]
        flat = out.ravel()
        for _ in range(self.levels):
            child = flat[source]
            np.maximum.at(flat, target, child - (1 - self.discount) * np.abs(child))
        return flat.reshape(n, width)

