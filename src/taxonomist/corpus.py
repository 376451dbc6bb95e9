"""Documents with optional gold labels, streamed from files so that large corpora never sit in memory."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from itertools import islice
from pathlib import Path

from .errors import InputError
from .labels import LabelSet

STDIN = "-"
BY_NAME = "label:"  # prefix of a gold subject given by its preferred label instead of its id
MAX_PROBLEMS = 20  # messages kept when skipping invalid rows; the count covers all of them


@dataclass(frozen=True)
class Document:
    id: str
    text: str
    labels: tuple[str, ...] | None = None  # None: unlabeled; () : labeled with no labels
    where: str = ""  # "file:line", for error messages
    # where each label was given, when a separate file gave them (Annif's NAME.tsv / NAME.key); else `where`
    label_where: tuple[str, ...] = ()


class DocumentStream:
    """Documents from a file, read lazily; each pass re-reads the file (standard input can be read once).

    After a pass: `skipped` and `problems` say what `skip_invalid` passed over, `unknown_labels` counts gold
    labels that are not in the label set (dropped from `Document.labels`, never silently: the caller reports them)
    and `unknown_where` names the file and line of the first ones. With `strict`, an unknown gold label is an
    error instead, as invalid as a malformed row.
    """

    def __init__(
        self,
        rows: Callable[[], Iterator[Document | InputError]],
        *,
        source: str,
        skip_invalid: bool,
        max_chars: int,
        label_set: LabelSet | None,
        strict: bool = False,
    ) -> None:
        self.source = source
        self._rows, self._skip_invalid, self._max_chars, self._label_set = rows, skip_invalid, max_chars, label_set
        self._strict = strict
        self._passes = 0
        self.skipped = 0
        self.problems: list[str] = []
        self.unknown_labels: Counter[str] = Counter()
        self.unknown_where: list[tuple[str, str]] = []  # (file:line, label), the first MAX_PROBLEMS of them
        self._by_name: dict[str, str] | None = None

    def __iter__(self) -> Iterator[Document]:
        if self.source == STDIN and self._passes:
            raise InputError(
                "standard input can be read only once",
                where="<stdin>",
                fix="write the documents to a file and give its path",
            )
        self._passes += 1
        self.skipped, self.problems, self.unknown_labels, self.unknown_where = 0, [], Counter(), []
        first_seen: dict[str, str] = {}  # id -> where: enough to name both lines of a duplicate, without texts
        for row in self._rows():
            try:
                doc = self._check(row, first_seen)
            except InputError as problem:
                if not self._skip_invalid:
                    raise
                self.skipped += 1
                if len(self.problems) < MAX_PROBLEMS:
                    self.problems.append(str(problem))
                continue
            first_seen[doc.id] = doc.where
            yield doc

    def _check(self, row: Document | InputError, first_seen: dict[str, str]) -> Document:
        if isinstance(row, InputError):
            raise row
        if not row.text.strip():
            raise InputError(
                "empty text", where=f"{row.where}, field 'text'", fix="give every document some text, or remove it"
            )
        if len(row.text) > self._max_chars:
            raise InputError(
                f"a document of {len(row.text):,} characters, over the limit of {self._max_chars:,}",
                where=f"{row.where}, field 'text'",
                fix="raise the limit with --max-doc-chars, or split the document",
            )
        if row.id in first_seen:
            raise InputError(
                f"duplicate document id {row.id!r} (first at {first_seen[row.id]})",
                where=f"{row.where}, field 'id'",
                fix="give each document its own id",
            )
        if self._label_set is None or row.labels is None:
            return row
        labels = tuple(self._resolve(label) for label in row.labels)
        unknown = [i for i, label in enumerate(labels) if label not in self._label_set]
        for i in unknown:
            where = row.label_where[i] if row.label_where else row.where
            if self._strict:
                raise _unknown_label_error(labels[i], where)
            self.unknown_labels[labels[i]] += 1
            if len(self.unknown_where) < MAX_PROBLEMS:
                self.unknown_where.append((where, labels[i]))
        known = tuple(dict.fromkeys(label for label in labels if label in self._label_set))
        return row if known == row.labels else replace(row, labels=known, label_where=())

    def _resolve(self, label: str) -> str:
        """A subject given by its preferred label ("label:Physics", from Annif's .key files and JSONL) becomes
        the id of the label with that name; an unmatched one stays as given and is reported as unknown."""
        if not label.startswith(BY_NAME):
            return label
        if self._by_name is None:
            self._by_name = {}
            for item in self._label_set:
                self._by_name.setdefault(item.name.casefold(), item.id)
        return self._by_name.get(label[len(BY_NAME) :].strip().casefold(), label)


def _unknown_label_error(label: str, where: str) -> InputError:
    if label.startswith(BY_NAME):
        what = f"the subject {label[len(BY_NAME):]!r}, given by its label, matches no label's name"
    else:
        what = f"the gold label {label!r} is not in the label set"
    return InputError(
        what,
        where=where,
        fix="correct it, or add it to the label set; without --strict, unknown labels are counted, reported and "
        "left out",
    )


def batches(docs: Iterable[Document], size: int) -> Iterator[list[Document]]:
    """Consecutive lists of `size` documents (the last may be shorter), so encoders see bounded batches."""
    if size < 1:
        raise ValueError(f"batch size must be at least 1, got {size}")
    it = iter(docs)
    while batch := list(islice(it, size)):
        yield batch
