"""LabelSet: the label vocabulary (flat or a poly-hierarchy) and the texts each label is known by."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import scipy.sparse as sp

from .errors import InputError


@dataclass(frozen=True)
class Label:
    id: str
    name: str
    description: str = ""
    parents: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    where: str = ""  # "file:line" or subject IRI, for error messages
    notation: str = ""  # a thesaurus's own code for the concept (skos:notation, Annif's notation column)
    # False for a grouping-only label (a thesaurus' category, a facet): never suggested, but still a parent
    assignable: bool = True


@dataclass
class LabelSet:
    """Validated labels in a fixed order: arrays elsewhere index labels by position in this list."""

    labels: list[Label]
    source: str = ""
    _index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._index = {}
        for i, label in enumerate(self.labels):
            self._index[label.id] = i
        validate(self)

    def __len__(self) -> int:
        return len(self.labels)

    def __iter__(self):
        return iter(self.labels)

    def __getitem__(self, i: int) -> Label:
        return self.labels[i]

    def __contains__(self, label_id: str) -> bool:
        return label_id in self._index

    def index_of(self, label_id: str) -> int:
        return self._index[label_id]

    def matrix(self, label_ids: Sequence[Iterable[str]]) -> sp.csr_matrix:
        """0/1 float32 (documents, labels) matrix of each document's label ids; an id outside the set is an error
        that names the first few."""
        rows, cols, unknown = [], [], []
        for row, ids in enumerate(label_ids):
            for label_id in ids:
                if (col := self._index.get(label_id)) is None:
                    unknown.append(label_id)
                else:
                    rows.append(row)
                    cols.append(col)
        if unknown:
            shown = ", ".join(repr(u) for u in sorted(set(unknown))[:5])
            raise InputError(f"{len(unknown):,} example labels are not in the label set ({shown})",
                             fix="add them to the label set, or drop them from the examples")
        return sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(len(label_ids), len(self)))

    @cached_property
    def ids(self) -> list[str]:
        return [label.id for label in self.labels]

    @cached_property
    def names(self) -> list[str]:
        return [label.name for label in self.labels]

    @cached_property
    def parent_index(self) -> list[np.ndarray]:
        """Each label's parents as positions (int64 arrays); empty for roots."""
        return [np.array([self._index[p] for p in label.parents], dtype=np.int64) for label in self.labels]

    @cached_property
    def children_index(self) -> list[np.ndarray]:
        kids: list[list[int]] = [[] for _ in self.labels]
        for i, parents in enumerate(self.parent_index):
            for p in parents:
                kids[p].append(i)
        return [np.array(k, dtype=np.int64) for k in kids]

    @cached_property
    def assignable(self) -> np.ndarray:
        """bool (L,): which labels may be suggested (grouping-only labels may not)."""
        return np.array([label.assignable for label in self.labels], dtype=bool)

    @cached_property
    def is_hierarchical(self) -> bool:
        return any(label.parents for label in self.labels)

    def under(self, label_ids: Iterable[str]) -> np.ndarray:
        """bool (L,): the labels in the branches of `label_ids` (each label itself and everything below it,
        through any of its parents); an id outside the set is an error that names it."""
        ids = list(label_ids)
        unknown = [label_id for label_id in ids if label_id not in self._index]
        if unknown:
            raise InputError(f"unknown label ids: {', '.join(repr(u) for u in unknown[:5])}",
                             fix="use ids of the label set (search them by name: GET .../labels?q=)")
        inside = np.zeros(len(self), dtype=bool)
        todo = [self._index[label_id] for label_id in ids]
        while todo:
            i = todo.pop()
            if not inside[i]:
                inside[i] = True
                todo.extend(int(c) for c in self.children_index[i] if not inside[c])
        return inside

    def path(self, i: int) -> list[int]:
        """One root-to-label path (first parent at each step), for 'A > B > C' text views."""
        out = [i]
        seen = {i}
        while len(self.parent_index[out[-1]]):
            p = int(self.parent_index[out[-1]][0])
            if p in seen:
                break
            out.append(p)
            seen.add(p)
        return out[::-1]

    def text_views(self) -> dict[str, list[str]]:
        """Texts a label is known by; scorers embed each view and combine them."""
        names = self.names
        views = {
            "name": names,
            "description": [
                f"{label.name}: {label.description}" if label.description else label.name for label in self.labels
            ],
        }
        if self.is_hierarchical:
            views["path"] = [" > ".join(names[j] for j in self.path(i)) for i in range(len(self))]
        if any(label.aliases for label in self.labels):
            views["aliases"] = [", ".join((label.name, *label.aliases)) for label in self.labels]
        return views

    @cached_property
    def fingerprint(self) -> str:
        """Content hash: a saved model or cache knows which label set it was built for."""
        payload = json.dumps([_content(label) for label in self.labels], ensure_ascii=False)
        return hashlib.sha256(payload.encode()).hexdigest()


def label_counts(targets: sp.csr_matrix) -> np.ndarray:
    """Examples per label (float32 (L,)) of a 0/1 (documents, labels) matrix."""
    return np.asarray(targets.sum(axis=0), dtype=np.float32).ravel()


def _content(label: Label) -> list:
    """The notation, and that a label is not assignable, are appended only when so, so label sets without them
    keep the fingerprints that models saved before they existed recorded."""
    fields = [label.id, label.name, label.description, list(label.parents), list(label.aliases)]
    fields += [label.notation] if label.notation else []
    return fields + ["not assignable"] if not label.assignable else fields


def validate(label_set: LabelSet) -> None:
    """Stop at the first problem, naming the label's file:line (or IRI) and field, and how to fix it."""
    labels = label_set.labels
    if not labels:
        raise InputError("the label set is empty", where=label_set.source or None, fix="give at least one label")
    first: dict[str, Label] = {}
    for label in labels:
        if not label.id.strip():
            raise InputError("empty label id", where=_at(label, "id"), fix="give every label a non-empty id")
        if label.id in first:
            raise InputError(
                f"duplicate label id {label.id!r} (first at {_at(first[label.id])})",
                where=_at(label, "id"),
                fix="give each label its own id, or merge the two",
            )
        first[label.id] = label
        if not label.name.strip():
            raise InputError(
                f"label {label.id!r} has an empty name", where=_at(label, "name"), fix="give every label a name"
            )
    if not any(label.assignable for label in labels):
        raise InputError("no label of the set may be suggested: every one is marked not assignable",
                         where=label_set.source or None, fix="mark only grouping labels (categories) not assignable")
    for label in labels:
        for parent in label.parents:
            if parent not in first:
                raise InputError(
                    f"unknown parent {parent!r}", where=_at(label, "parents"), fix=_parent_fix(parent, labels)
                )
    cycle = _find_cycle(labels)
    if cycle:
        loop = " -> ".join(repr(label_id) for label_id in cycle)
        raise InputError(
            f"the parents form a cycle: {loop}",
            where=_at(first[cycle[0]], "parents"),
            fix="remove one parent link on the cycle: a label cannot be its own ancestor",
        )


def _at(label: Label, field: str | None = None) -> str:
    where = label.where or f"label {label.id!r}"
    return f"{where}, field {field!r}" if field else where


def _parent_fix(parent: str, labels: list[Label]) -> str:
    named = [label.id for label in labels if label.name == parent]
    if named:
        return f"{parent!r} is the name of label {named[0]!r}: parents refer to ids, not names"
    return f"add a label with id {parent!r}, or correct the parent id"


def _find_cycle(labels: list[Label]) -> list[str]:
    """One cycle in the child -> parent graph as ids (first repeated last), or []; iterative, so deep
    hierarchies cannot overflow the stack."""
    parents = {label.id: label.parents for label in labels}
    done: set[str] = set()
    for root in parents:
        if root in done:
            continue
        path, on_path = [root], {root}
        todo = [iter(parents[root])]
        while todo:
            nxt = next(todo[-1], None)
            if nxt is None:
                node = path.pop()
                on_path.discard(node)
                done.add(node)
                todo.pop()
            elif nxt in on_path:
                return path[path.index(nxt) :] + [nxt]
            elif nxt not in done:
                path.append(nxt)
                on_path.add(nxt)
                todo.append(iter(parents[nxt]))
    return []
