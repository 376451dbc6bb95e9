"""Annif's subject vocabularies, read unchanged: TSV (`<uri><TAB>label[<TAB>notation]`, no header) and CSV
(`uri`, optional `notation`, one `label_<lang>` column per language). A label's id is its URI without the
angle brackets, so URIs match whether a file writes them bracketed or not."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from ..errors import InputError
from ..labels import Label
from ._text import at, numbered_lines, open_bytes

TSV_FIX = "write one subject per line as <URI><TAB>label, optionally <TAB>notation (Annif's TSV vocabulary)"
LABEL_PREFIX = "label_"


def strip_uri(text: str) -> str:
    text = text.strip()
    return text[1:-1].strip() if text.startswith("<") and text.endswith(">") else text


def read_tsv_labels(path: Path) -> list[Label]:
    labels = []
    for number, line in _lines(path):
        text = line.rstrip("\r\n")
        if not text.strip():
            continue
        where = at(str(path), number)
        fields = text.split("\t")
        if len(fields) < 2:
            raise InputError(
                "no tab between the URI and the label", where=where, fix=TSV_FIX + "; separate fields with a tab"
            )
        if len(fields) > 3:
            raise InputError(
                f"{len(fields)} tab-separated fields, at most 3 expected",
                where=where,
                fix=TSV_FIX + "; labels cannot contain tabs",
            )
        notation = fields[2].strip() if len(fields) == 3 else ""
        labels.append(Label(id=strip_uri(fields[0]), name=fields[1].strip(), notation=notation, where=where))
    return labels


def read_csv_labels(path: Path, language: str) -> list[Label]:
    """The name is `label_<language>`, else the first non-empty label column; a row whose label columns are
    all empty is a deprecated subject (Annif's convention) and is left out."""
    source = str(path)
    rows = _csv_rows(path)
    header = [cell.strip().lower() for cell in next(rows, (1, []))[1]]
    label_columns = [i for i, name in enumerate(header) if name.startswith(LABEL_PREFIX)]
    missing = [name for name, ok in (("uri", "uri" in header), ("label_<lang>", bool(label_columns))) if not ok]
    if missing:
        raise InputError(
            f"the header lacks the column {missing[0]!r} (found {', '.join(map(repr, header)) or 'nothing'})",
            where=at(source, 1),
            fix="start an Annif CSV vocabulary with a header such as: uri,label_en,label_fi,notation",
        )
    wanted = LABEL_PREFIX + language.lower()
    label_columns.sort(key=lambda i: header[i] != wanted)  # stable: the chosen language, then file order
    uri, notation = header.index("uri"), header.index("notation") if "notation" in header else None
    labels = []
    for number, cells in rows:
        if not any(cell.strip() for cell in cells):
            continue
        cells = cells + [""] * (len(header) - len(cells))
        where = at(source, number)
        if len(cells) > len(header):
            raise InputError(
                f"{len(cells)} fields but the header has {len(header)}",
                where=where,
                fix="quote fields that contain ',', or remove the extra fields",
            )
        names = [cells[i].strip() for i in label_columns if cells[i].strip()]
        if not names:
            continue
        labels.append(
            Label(
                id=strip_uri(cells[uri]),
                name=names[0],
                notation=cells[notation].strip() if notation is not None else "",
                where=where,
            )
        )
    return labels


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    with open_bytes(path) as f:
        for number, line, error in numbered_lines(f, str(path)):
            if error is not None:
                raise error
            yield number, line


def _csv_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(first line of the record, its cells), stopping at the first malformed record."""
    source = str(path)
    reader = csv.reader((line for _, line in _lines(path)), strict=True)
    end = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            raise InputError(
                f"malformed row: {e}", where=at(source, reader.line_num), fix="check the quoting on this line"
            ) from e
        start, end = end + 1, reader.line_num
        yield start, cells
