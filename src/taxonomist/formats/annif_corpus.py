"""Annif's document corpora, read unchanged: short-text TSV (`text<TAB><uri> <uri> ...`, no header, optionally
gzip-compressed), CSV (`text`, `subject_uris`, optional `document_id`) and JSONL (`text`, optional `document_id`,
`subjects` as `{"uri": ...}` or `{"label": ...}`).

Gold labels are subject URIs without angle brackets, the ids Annif's vocabularies get (see formats.annif). A
subject given only by its label cannot be resolved to a URI without the vocabulary, so it is kept as
"label:<label>": it matches no label id, and the document stream reports it among the unknown labels instead of
dropping it unseen.
"""

from __future__ import annotations

import gzip
import re
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from ..corpus import BY_NAME, Document
from ..errors import InputError
from . import delimited, jsonl
from ._text import at, numbered_lines, open_bytes, require_file
from .annif import strip_uri

LABEL_PREFIX = BY_NAME  # resolved to label ids by the DocumentStream (corpus.py)
TSV_FIX = "write one document per line as text<TAB><uri> <uri> ... (Annif's TSV corpus)"
CSV_COLUMNS = ("document_id", "text", "subject_uris")
# A subject in a TSV line or a `subject_uris` cell: a bracketed URI, or a bare one with a scheme
URI = re.compile(r"<[^<>\s]+>|[A-Za-z][A-Za-z0-9+.-]*:[^<>\s]+")


def looks_like_subjects(text: str) -> bool:
    """True when the text is one or more URIs separated by whitespace: the part after the tab of a TSV line."""
    tokens = text.split()
    return bool(tokens) and all(URI.fullmatch(token) for token in tokens)


def open_corpus(path: Path) -> BinaryIO:
    """The file's bytes, decompressed on the fly when its name ends with .gz."""
    if path.suffix.lower() != ".gz":
        return open_bytes(path)
    require_file(path)
    return gzip.open(path, "rb")  # type: ignore[return-value]


def read_tsv_documents(path: Path) -> Iterator[Document | InputError]:
    """One document a line; the id is the line number, since the format has none. An empty subject part leaves
    the document unlabeled, as an empty `labels` cell does in our tables."""
    source = str(path)
    with open_corpus(path) as f:
        try:
            for number, line, error in numbered_lines(f, source):
                if error is not None:
                    yield error
                    continue
                if not line.strip():
                    continue
                yield _tsv_document(line.rstrip("\r\n"), number, at(source, number))
        except (OSError, EOFError, zlib.error) as e:  # a damaged or truncated .gz file
            raise InputError(
                f"cannot decompress {path}: {e}", where=source, fix="check the file with gzip -t, or decompress it"
            ) from e


def _tsv_document(line: str, number: int, where: str) -> Document | InputError:
    text, tab, subjects = line.partition("\t")
    if not tab:
        return InputError("no tab between the text and its subjects", where=where, fix=TSV_FIX)
    labels = _uris(subjects)
    return Document(id=str(number), text=text, labels=labels or None, where=where)


def read_csv_documents(path: Path, max_chars: int) -> Iterator[Document | InputError]:
    """Columns other than these three (Annif passes them on as metadata) are ignored."""
    records = delimited.rows(path, ",", required=("text",), known=CSV_COLUMNS, max_chars=max_chars)
    for number, row in records:
        if isinstance(row, InputError):
            yield row
            continue
        labels = _uris(row.get("subject_uris", ""))
        yield Document(
            id=row.get("document_id", "").strip() or str(number),
            text=row["text"],
            labels=labels or None,
            where=at(str(path), number),
        )


def read_jsonl_documents(path: Path) -> Iterator[Document | InputError]:
    """A missing or null `subjects` leaves the document unlabeled; [] means labeled with no subjects."""
    for number, where, obj in jsonl.objects(path):
        if isinstance(obj, InputError):
            yield obj
            continue
        try:
            yield Document(
                id=jsonl.identifier(obj, "document_id", where, default=str(number)),
                text=jsonl.string_field(obj, "text", where, required=True),
                labels=_subjects(obj.get("subjects"), at(where, field="subjects")),
                where=where,
            )
        except InputError as e:
            yield e


def _subjects(value: Any, where: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    fix = 'write "subjects": [{"uri": "http://..."}, {"label": "..."}]'
    if not isinstance(value, list):
        raise InputError(f"'subjects' must be a list, found {jsonl.kind_of(value)}", where=where, fix=fix)
    labels = []
    for subject in value:
        uri = subject.get("uri") if isinstance(subject, dict) else None
        label = subject.get("label") if isinstance(subject, dict) else None
        if isinstance(uri, str) and uri.strip():
            labels.append(strip_uri(uri))
        elif isinstance(label, str) and label.strip():
            labels.append(LABEL_PREFIX + label.strip())
        else:
            raise InputError(
                f"a subject without a 'uri' or 'label' string: {subject!r}"[:200], where=where, fix=fix
            )
    return tuple(dict.fromkeys(labels))


def _uris(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(uri for uri in map(strip_uri, text.split()) if uri))
