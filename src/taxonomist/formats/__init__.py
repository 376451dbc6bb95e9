"""File formats: which reader a file needs, decided by its extension, else by sniffing its first bytes, so the
command line has one --labels and one --docs option whatever the format.

Readers of labels return a list of Label (LabelSet validates it); readers of documents yield Document, or an
InputError for a row that cannot be read, so the caller decides whether to stop or skip; errors that stop the
whole file (a missing column, an unreadable header) are raised.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path

from ..corpus import STDIN, Document
from ..errors import InputError
from ..labels import Label
from . import annif, annif_corpus, delimited, jsonl, lines, textdir
from ._text import require_file

SUFFIXES = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".txt": "lines",
    ".ttl": "turtle",
    ".rdf": "xml",
    ".xml": "xml",
    ".owl": "xml",
    ".nt": "nt",
    ".n3": "n3",
    ".trig": "trig",
    ".nq": "nquads",
    ".jsonld": "json-ld",
}
DELIMITERS = {"csv": ",", "tsv": "\t"}
NOT_SKOS = {"jsonl", "csv", "tsv", "lines", "annif-tsv", "annif-csv"}  # every other label kind is an RDF syntax
HEADER_WORDS = {"id", "name", "text"}  # a first line naming one of these columns is a table's header
SNIFF_BYTES = 4096
LABEL_EXTENSIONS = ".jsonl, .csv, .tsv, .ttl, .rdf, .nt"
# An Annif TSV vocabulary line: a URI (bracketed or not), then a tab
ANNIF_TSV_LINE = re.compile(r"(<[^>\s]*>|https?://\S*)\t")
DOCUMENT_EXTENSIONS = (
    ".jsonl, .csv, .tsv, .txt (one document per line), Annif's .tsv.gz corpus, or a folder of .txt files"
)


def detect(path: str | Path) -> str:
    """'jsonl', 'csv', 'tsv', 'lines' (one document per line), 'textdir', or an rdflib syntax ('turtle', ...)."""
    if str(path) == STDIN:
        return "lines"
    path = Path(path)
    if path.is_dir():
        return "textdir"
    return SUFFIXES.get(path.suffix.lower()) or _sniff(path)


def _sniff(path: Path) -> str:
    require_file(path)
    with path.open("rb") as f:
        head = f.read(SNIFF_BYTES).decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n")
    first = head.splitlines()[0] if head else ""
    if head.startswith("{"):
        return "jsonl"
    if re.match(r"<[^>\s]+>\s+<", first):
        return "nt"
    if head.startswith("<"):
        return "xml"
    if re.match(r"(@prefix|@base|prefix|base)\s", head, re.IGNORECASE):
        return "turtle"
    for kind, delimiter in DELIMITERS.items():
        if HEADER_WORDS & {cell.strip().lower() for cell in first.split(delimiter)}:
            return kind
    return "lines"


def read_label_file(path: Path, language: str = "en", not_assignable: Sequence[str] = ()) -> list[Label]:
    """`not_assignable`: SKOS types or schemes whose concepts are grouping labels (see skos.py); other formats
    mark such labels themselves."""
    require_file(path)
    kind = detect_labels(path)
    if not_assignable and kind in NOT_SKOS:
        raise InputError(
            f"--not-assignable names SKOS concept types or schemes, and {path} is not SKOS",
            where=str(path),
            fix='mark grouping labels in the file itself: "assignable": false (JSONL) or an assignable column '
            "(CSV, TSV) holding false",
        )
    if kind == "jsonl":
        return jsonl.read_labels(path)
    if kind == "annif-tsv":
        return annif.read_tsv_labels(path)
    if kind == "annif-csv":
        return annif.read_csv_labels(path, language)
    if kind in DELIMITERS:
        return delimited.read_labels(path, DELIMITERS[kind])
    if kind == "lines":
        raise InputError(
            f"{path} is plain text, not a label format (labels need at least an id and a name)",
            where=str(path),
            fix=f"give the file the extension of its format: {LABEL_EXTENSIONS}",
        )
    from . import skos  # only SKOS files need the RDF parsers

    return skos.read_labels(path, kind, language, not_assignable)


def detect_labels(path: Path) -> str:
    """detect(), with Annif's vocabularies told apart from our tables by their first line: a TSV without our
    header, or any file whose first line is a URI then a tab, is Annif's TSV; a CSV header naming `uri` or a
    `label_<lang>` column, and neither `id` nor `name`, is Annif's CSV."""
    kind = detect(path)
    if kind not in ("tsv", "csv", "lines", "xml"):
        return kind
    with path.open("rb") as f:
        first = f.readline().decode("utf-8", errors="replace").lstrip("\ufeff").strip("\r\n")
    if ANNIF_TSV_LINE.match(first.lstrip()):
        return "annif-tsv"
    if kind == "tsv" and not HEADER_WORDS & {cell.strip().lower() for cell in first.split("\t")}:
        return "annif-tsv"
    header = {cell.strip().lower() for cell in first.split(",")}
    annif_csv = "uri" in header or any(cell.startswith(annif.LABEL_PREFIX) for cell in header)
    if kind in ("csv", "lines") and annif_csv and not header & {"id", "name"}:
        return "annif-csv"
    return kind


def document_reader(path: str | Path, max_chars: int) -> Callable[[], Iterator[Document | InputError]]:
    """A function that starts a fresh pass over the documents; the path is checked now, the files read later."""
    if str(path) != STDIN and not Path(path).exists():
        raise InputError(
            f"no such file or folder: {path}", where=str(path), fix="check the path and the working directory"
        )
    kind = detect_documents(path)
    if kind == "lines":
        return partial(lines.read_documents, path)
    path = Path(path)
    if kind == "annif-tsv":
        return partial(annif_corpus.read_tsv_documents, path)
    if kind == "annif-csv":
        return partial(annif_corpus.read_csv_documents, path, max_chars)
    if kind == "annif-jsonl":
        return partial(annif_corpus.read_jsonl_documents, path)
    if kind == "jsonl":
        return partial(jsonl.read_documents, path)
    if kind in DELIMITERS:
        return partial(delimited.read_documents, path, DELIMITERS[kind], max_chars)
    if kind == "textdir":
        return partial(textdir.read_documents, path, max_chars)
    raise InputError(
        f"{path} looks like an RDF file ({kind}), not documents",
        where=str(path),
        fix=f"give documents as {DOCUMENT_EXTENSIONS}",
    )


def detect_documents(path: str | Path) -> str:
    """detect(), with Annif's corpora told apart from our documents by their first line: a TSV (or .tsv.gz)
    without our header whose part after the first tab is URIs; a CSV header naming `subject_uris` or
    `document_id` and not `id`; JSON Lines whose first object has `subjects` or `document_id`."""
    if str(path) == STDIN:
        return "lines"
    path = Path(path)
    if path.suffix.lower() == ".gz":
        return _detect_gzip(path)
    kind = detect(path)
    if kind not in ("tsv", "csv", "jsonl"):
        return kind
    first = _first_line(path)
    if kind == "tsv":
        own_header = HEADER_WORDS & {cell.strip().lower() for cell in first.split("\t")}
        annif_tsv = not own_header and annif_corpus.looks_like_subjects(first.partition("\t")[2])
        return "annif-tsv" if annif_tsv else kind
    if kind == "csv":
        header = {cell.strip().strip('"').lower() for cell in first.split(",")}
        return "annif-csv" if header & {"subject_uris", "document_id"} and "id" not in header else kind
    try:
        obj = json.loads(first)
    except json.JSONDecodeError:
        return kind  # the JSONL reader reports the line
    return "annif-jsonl" if isinstance(obj, dict) and obj.keys() & {"subjects", "document_id"} else kind


def _detect_gzip(path: Path) -> str:
    """Only Annif's TSV corpus is read compressed; anything else is refused with the way out, not misread."""
    inner = path.with_suffix("").suffix.lower()
    if inner in (".tsv", ".tab"):
        with annif_corpus.open_corpus(path) as f:
            try:
                first = f.readline().decode("utf-8", errors="replace").lstrip("\ufeff").strip("\r\n")
            except (OSError, EOFError, zlib.error) as e:
                raise InputError(
                    f"cannot decompress {path}: {e}", where=str(path), fix="check the file with gzip -t"
                ) from e
        if "\t" in first and annif_corpus.looks_like_subjects(first.partition("\t")[2]):
            return "annif-tsv"
    raise InputError(
        f"{path} is compressed, and only Annif's TSV corpus (text<TAB><uri> ...) is read compressed",
        where=str(path),
        fix=f"decompress it (gunzip {path.name}) and give the uncompressed file",
    )


def _first_line(path: Path) -> str:
    """The first non-blank line, whole: a long first document still shows its subjects or its closing brace."""
    require_file(path)
    with path.open("rb") as f:
        for data in f:
            line = data.decode("utf-8", errors="replace").lstrip("\ufeff").strip("\r\n")
            if line.strip():
                return line
    return ""
