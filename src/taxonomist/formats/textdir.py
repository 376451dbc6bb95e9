"""A folder of .txt files, one document each (id = file stem), with optional gold labels in a sibling
NAME.labels file (one label id per line)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ..corpus import Document
from ..errors import InputError
from ._text import at, numbered_lines, utf8_error

# UTF-8 needs at most 4 bytes a character, so a file this many times larger than the limit is surely too long
MAX_BYTES_PER_CHAR = 4


def read_documents(folder: Path, max_chars: int) -> Iterator[Document | InputError]:
    """Lists the folder once, then reads each file only when the iteration reaches it."""
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".txt" and p.is_file())
    if not files:
        raise InputError(
            f"no .txt files in the folder {folder}",
            where=str(folder),
            fix="give a folder of .txt files (one document each), or a .jsonl/.csv/.tsv file",
        )
    for path in files:
        try:
            yield Document(id=path.stem, text=_text(path, max_chars), labels=_labels(path), where=str(path))
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


def _labels(path: Path) -> tuple[str, ...] | None:
    labels_path = path.with_suffix(".labels")
    if not labels_path.is_file():
        return None
    labels = []
    with labels_path.open("rb") as f:
        for _, line, error in numbered_lines(f, str(labels_path)):
            if error is not None:
                raise error
            if line.strip():
                labels.append(line.strip())
    return tuple(dict.fromkeys(labels))
