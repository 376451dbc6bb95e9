"""A folder of .txt files, one document each (id = file stem), with optional gold labels in a sibling file:
NAME.labels (one label id per line), else Annif's NAME.tsv (`<uri><TAB>label` lines: the URI is the label id),
else Annif's NAME.key (one preferred label per line, kept as "label:<label>" since only the vocabulary can turn
it into a URI: see formats.annif_corpus)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from ..corpus import Document
from ..errors import InputError
from ._text import at, numbered_lines, utf8_error
from .annif import strip_uri
from .annif_corpus import LABEL_PREFIX

# UTF-8 needs at most 4 bytes a character, so a file this many times larger than the limit is surely too long
MAX_BYTES_PER_CHAR = 4
# Sibling files of gold labels, by precedence, and how each non-blank line becomes a label id
LABEL_FILES: tuple[tuple[str, Callable[[str], str]], ...] = (
    (".labels", lambda line: line),
    (".tsv", lambda line: strip_uri(line.split("\t", 1)[0])),
    (".key", lambda line: LABEL_PREFIX + line),
)


def document_files(folder: Path) -> list[Path]:
    """The folder's documents, in the order they are read; writers of per-document results use it too."""
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".txt" and p.is_file())
    if not files:
        raise InputError(
            f"no .txt files in the folder {folder}",
            where=str(folder),
            fix="give a folder of .txt files (one document each), or a .jsonl/.csv/.tsv file",
        )
    return files


def read_documents(folder: Path, max_chars: int) -> Iterator[Document | InputError]:
    """Lists the folder once, then reads each file only when the iteration reaches it."""
    for path in document_files(folder):
        try:
            labels = _labels(path)
            yield Document(
                id=path.stem,
                text=_text(path, max_chars),
                labels=None if labels is None else tuple(labels),
                where=str(path),
                label_where=() if labels is None else tuple(labels.values()),
            )
        except InputError as e:
            yield e


def _text(path: Path, max_chars: int) -> str:
    size = path.stat().st_size
    if size > MAX_BYTES_PER_CHAR * max_chars:
        raise InputError(
            f"a document of {size:,} bytes, over the limit of {max_chars:,} characters",
            where=str(path),
            fix="raise the limit with --max-doc-chars, or split the document",
        )
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        column = e.start - data.rfind(b"\n", 0, e.start)
        raise utf8_error(data[e.start : e.end], column, at(str(path), line)) from e


def _labels(path: Path) -> dict[str, str] | None:
    """Label id -> file:line of its first mention, from the first of NAME.labels, NAME.tsv, NAME.key that exists
    (Annif, too, reads one subject file a document); the line lets an unknown label be reported where it is."""
    for suffix, label_of in LABEL_FILES:
        labels_path = path.with_suffix(suffix)
        if labels_path.is_file():
            labels: dict[str, str] = {}
            for number, line in _lines(labels_path):
                labels.setdefault(label_of(line), at(str(labels_path), number))
            return labels
    return None


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    with path.open("rb") as f:
        for number, line, error in numbered_lines(f, str(path)):
            if error is not None:
                raise error
            if line.strip():
                yield number, line.strip()

