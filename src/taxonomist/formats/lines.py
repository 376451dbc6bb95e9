"""Plain text, one document per line (id = line number): a .txt file or standard input ("-")."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

from ..corpus import STDIN, Document
from ..errors import InputError
from ._text import at, numbered_lines, open_bytes


def read_documents(source: str | Path) -> Iterator[Document | InputError]:
    """Blank lines carry no document and are passed over; numbering still counts them, so ids match lines."""
    if str(source) == STDIN:
        yield from _documents(sys.stdin.buffer, "<stdin>")
    else:
        with open_bytes(Path(source)) as f:
            yield from _documents(f, str(source))


def _documents(raw, name: str) -> Iterator[Document | InputError]:
    for number, line, error in numbered_lines(raw, name):
        if error is not None:
            yield error
        elif line.strip():
            yield Document(id=str(number), text=line.rstrip("\r\n"), where=at(name, number))
