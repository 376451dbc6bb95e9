"""CSV and TSV with a header row, for labels (id, name, description, parent/parents, aliases) and documents
(id, text, labels). Several parents, aliases or labels share one cell, separated by '|'.

CSV follows RFC 4180 quoting; TSV has no quoting (one record per line, as in the IANA definition), so a
text that begins with a quote mark is kept as written.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from ..corpus import Document
from ..errors import InputError
from ..labels import Label
from ._text import at, numbered_lines, open_bytes

LABEL_COLUMNS = ("id", "name", "description", "parent", "parents", "aliases", "assignable")
YES, NO = ("", "true", "yes", "1"), ("false", "no", "0")
DOCUMENT_COLUMNS = ("id", "text", "labels")

Row = dict[str, str]


def read_labels(path: Path, delimiter: str) -> list[Label]:
    labels = []
    for number, row in rows(path, delimiter, required=("id", "name"), known=LABEL_COLUMNS):
        if isinstance(row, InputError):
            raise row
        labels.append(
            Label(
                id=row["id"].strip(),
                name=row["name"].strip(),
                description=row.get("description", "").strip(),
                parents=_split(row.get("parent", "") + "|" + row.get("parents", "")),
                aliases=_split(row.get("aliases", "")),
                where=at(str(path), number),
                assignable=_assignable(row.get("assignable", ""), at(str(path), number)),
            )
        )
    return labels


def _assignable(cell: str, where: str) -> bool:
    value = cell.strip().lower()
    if value not in YES + NO:
        raise InputError(f"'assignable' must be true or false, found {cell!r}", where=f"{where}, field 'assignable'",
                         fix="write false for a grouping-only label (never suggested), true or nothing otherwise")
    return value in YES


def read_documents(path: Path, delimiter: str, max_chars: int) -> Iterator[Document | InputError]:
    """A row whose 'labels' cell is empty is unlabeled: a table cannot tell 'no labels' from 'not annotated',
    and a partly annotated sheet is the common case."""
    records = rows(path, delimiter, required=("text",), known=DOCUMENT_COLUMNS, max_chars=max_chars)
    for number, row in records:
        if isinstance(row, InputError):
            yield row
            continue
        cell = row.get("labels", "").strip()
        yield Document(
            id=row.get("id", "").strip() or str(number),
            text=row["text"],
            labels=_split(cell) if cell else None,
            where=at(str(path), number),
        )


def _split(cell: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(p.strip() for p in cell.split("|") if p.strip()))


def rows(
    path: Path, delimiter: str, *, required: tuple[str, ...], known: tuple[str, ...], max_chars: int | None = None
) -> Iterator[tuple[int, Row | InputError]]:
    """(first line of the record, its cells by lower-cased column name), or an error for a row that cannot be
    read; a header without the required columns stops the whole file (raised, not yielded)."""
    source = str(path)
    if max_chars is not None:
        # the csv module's own guard (131,072 characters) would otherwise stop long documents early
        csv.field_size_limit(max(csv.field_size_limit(), max_chars + 1))
    bad: dict[int, InputError] = {}

    with open_bytes(path) as f:

        def text_lines() -> Iterator[str]:
            for number, line, error in numbered_lines(f, source):
                if error is not None:
                    bad[number] = error
                yield line

        quoting = csv.QUOTE_MINIMAL if delimiter == "," else csv.QUOTE_NONE
        reader = csv.reader(text_lines(), delimiter=delimiter, quoting=quoting, strict=True)
        try:
            header = [cell.strip().lower() for cell in next(reader, [])]
        except csv.Error as e:
            raise InputError(f"unreadable header: {e}", where=at(source, 1), fix="fix the first line") from e
        if bad:
            raise bad[min(bad)]
        _check_header(header, source, required, known)
        end = reader.line_num
        while True:
            start = end + 1
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as e:
                end = reader.line_num
                yield start, _csv_error(e, at(source, end), max_chars)
                continue
            end = reader.line_num
            errors = [bad.pop(n) for n in range(start, end + 1) if n in bad]
            if errors:
                yield start, errors[0]
            elif not cells or (len(cells) == 1 and not cells[0].strip()):
                continue
            elif len(cells) > len(header):
                yield start, InputError(
                    f"{len(cells)} fields but the header has {len(header)}",
                    where=at(source, start),
                    fix=f"quote fields that contain {delimiter!r}, or remove the extra fields"
                    if delimiter == ","
                    else "remove the extra tab characters (TSV fields cannot contain tabs)",
                )
            else:  # a short row leaves its last cells empty
                yield start, {name: value for name, value in zip(header, cells + [""] * len(header)) if name in known}


def _check_header(header: list[str], source: str, required: tuple[str, ...], known: tuple[str, ...]) -> None:
    missing = [name for name in required if name not in header]
    if missing:
        found = ", ".join(repr(h) for h in header) or "nothing"
        raise InputError(
            f"the header lacks the column{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))} "
            f"(found {found})",
            where=at(source, 1),
            fix=f"start the file with a header row naming the columns; known columns: {', '.join(known)}",
        )


def _csv_error(e: csv.Error, where: str, max_chars: int | None) -> InputError:
    if max_chars is not None and "field larger than field limit" in str(e):
        return InputError(
            f"a field longer than {max_chars:,} characters",
            where=where,
            fix="raise the limit with --max-doc-chars, or split the document",
        )
    return InputError(f"malformed row: {e}", where=where, fix="check the quoting on this line")
