"""Reviewers' verdicts as training data: what `taxonomist train --feedback` folds into a model.

Per document, the verdicts standing (FeedbackStore.current_verdicts) decide: accepted and added labels are its
labels; a rejected label is never one of them (a document × label has one standing verdict), and is kept as a
(document sha256, label id) pair with the model (Model.rejections), which never suggests it for that text
again. A document with only rejections is no example: an example without labels would pull every label's ridge
head and nearest-example votes down near it, not only the rejected one's.

The model keeps each folded document's sha256 and labels (Model.folded), so folding the same store again (or a
copy of it) learns only documents it has not learnt. A document whose labels changed since it was folded (a
verdict added or undone) cannot be taken back out of an incrementally updated model: that is refused, with the
way to get the verdicts as they stand now (fold the store into the model it was first folded into).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..errors import InputError
from ..labels import LabelSet
from .store import ACCEPT, ADD, REJECT, FeedbackStore, text_sha256


@dataclass(frozen=True)
class FeedbackExamples:
    """Training examples from feedback: texts with their labels, the rejected pairs, and counts of what was
    folded (labels are standing verdicts; documents are those with at least one accepted or added label)."""

    texts: list[str]
    label_ids: list[list[str]]
    rejections: list[tuple[str, str]]
    accepted: int
    added: int
    rejected_only: int  # documents with rejections and no label: kept as rejections, no example
    already_folded: int = 0  # documents the model had folded with the same labels: left out
    refs: list[str | None] | None = None  # each example's reference given with it when served, if any

    @property
    def folded(self) -> list[tuple[str, list[str]]]:
        """(text sha256, labels) of each example: what the model keeps of it (Model.folded)."""
        return [(text_sha256(text), labels) for text, labels in zip(self.texts, self.label_ids)]

    @property
    def documents(self) -> int:
        return len(self.texts)


def resolve_project(store: FeedbackStore, project: str | None) -> str:
    """The project whose feedback to fold: the one named, or the store's only one."""
    projects = store.projects()
    if project is not None:
        if project not in projects:
            raise InputError(f"the feedback store has no project {project!r}", where=str(store.path),
                             fix=f"it holds {', '.join(map(repr, projects)) or 'no documents yet'}: pass one as "
                                 "--project")
        return project
    if len(projects) == 1:
        return projects[0]
    raise InputError(f"the feedback store holds {'no documents' if not projects else f'{len(projects)} projects'}",
                     where=str(store.path),
                     fix="review some documents first" if not projects else
                     f"pass --project with one of {', '.join(map(repr, projects))}")


def examples_from(store: FeedbackStore, project: str, labels: LabelSet,
                  folded: Mapping[str, Sequence[str]] | None = None) -> FeedbackExamples:
    """The project's standing verdicts as examples over `labels`, less the documents `folded` (a model's
    Model.folded) already holds with the same labels; a verdict on a label outside the set, or a folded document
    whose labels changed since, is an error that names the documents and labels."""
    verdicts = store.current_verdicts(project)
    if not verdicts:
        raise InputError(f"no feedback for project {project!r}", where=str(store.path),
                         fix="accept, reject or add labels in the review queue first (or pick another --project)")
    known = set(labels.ids)
    unknown = [v for v in verdicts if v.label_id not in known]
    if unknown:
        refs = {d.id: d.ref for d in store.documents(project, [v.document for v in unknown[:5]])}
        shown = "; ".join(f"document {v.document}{f' ({refs[v.document]})' if refs.get(v.document) else ''}: "
                          f"{v.verdict} {v.label_id!r}" for v in unknown[:5])
        raise InputError(f"{len(unknown):,} verdicts name labels that are not in the model's label set ({shown})",
                         where=str(store.path),
                         fix="add those labels to the model (taxonomist labels add), or undo those verdicts")
    positives: dict[int, list[str]] = {}
    rejected: dict[int, list[str]] = {}
    for v in verdicts:
        (rejected if v.verdict == REJECT else positives).setdefault(v.document, []).append(v.label_id)
    documents = {d.id: d for d in store.documents(project, sorted(positives.keys() | rejected.keys()))}
    ids = sorted(positives)
    already = 0
    if folded:  # every document of the store, also those whose verdicts were all undone since
        changed = [(i, ref) for i, sha, ref in store.hashes(project)
                   if sha in folded and sorted(folded[sha]) != sorted(positives.get(i, ()))]
        if changed:
            shown = ", ".join(f"document {i}{f' ({ref})' if ref else ''}" for i, ref in changed[:5])
            raise InputError(f"{len(changed):,} documents this model learnt from the store have other labels now "
                             f"({shown}), and a model cannot unlearn an example", where=str(store.path),
                             fix="fold the store into the model it was first folded into (its --model then), which "
                                 "takes every verdict as it stands now")
        new = [i for i in ids if documents[i].sha256 not in folded]
        already, ids = len(ids) - len(new), new
    return FeedbackExamples(
        texts=[documents[i].text for i in ids], label_ids=[positives[i] for i in ids],
        refs=[documents[i].ref for i in ids],
        rejections=[(documents[i].sha256, label) for i in sorted(rejected) for label in rejected[i]],
        accepted=sum(v.verdict == ACCEPT for v in verdicts), added=sum(v.verdict == ADD for v in verdicts),
        rejected_only=len(rejected.keys() - positives.keys()), already_folded=already)
