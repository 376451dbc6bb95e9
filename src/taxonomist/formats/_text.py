"""Shared plumbing for the readers: opening files with useful errors and decoding them line by line.

Files are read as bytes and decoded one line at a time, so a bad byte is reported with its line number
and a reader that skips invalid rows can carry on after it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from ..errors import InputError

UTF8_FIX = "save the file as UTF-8 (for example: iconv -f latin1 -t utf-8 FILE > FILE.utf8)"


def at(source: str, line: int | None = None, field: str | None = None) -> str:
    """The `where` of an error: 'file:line, field "x"'."""
    where = f"{source}:{line}" if line is not None else source
    return f"{where}, field {field!r}" if field else where


def require_file(path: Path) -> None:
    if not path.exists():
        raise InputError(f"no such file: {path}", where=str(path), fix="check the path and the working directory")
    if path.is_dir():
        raise InputError(f"{path} is a folder, not a file", where=str(path), fix="give the path of a file")


def open_bytes(path: Path) -> BinaryIO:
    require_file(path)
    try:
        return path.open("rb")
    except OSError as e:
        raise InputError(
            f"cannot open {path}: {e.strerror}", where=str(path), fix="check the file's permissions"
        ) from e


def utf8_error(bad: bytes, column: int, where: str) -> InputError:
    return InputError(
        f"bytes that are not UTF-8 ({bad!r} at byte {column} of the line)",
        where=where,
        fix=UTF8_FIX,
    )


def numbered_lines(raw: Iterable[bytes], source: str) -> Iterator[tuple[int, str, InputError | None]]:
    """(line number, text with its line ending, error): a line that is not UTF-8 comes with an error and its
    text decoded with replacement characters, so a CSV parser can stay in step with the file."""
    for number, data in enumerate(raw, 1):
        encoding = "utf-8-sig" if number == 1 else "utf-8"
        try:
            yield number, data.decode(encoding), None
        except UnicodeDecodeError as e:
            error = utf8_error(e.object[e.start : e.end], e.start + 1, at(source, number))
            yield number, data.decode(encoding, errors="replace"), error
