"""Writing suggestions: one row per (document, label) in JSONL, CSV or TSV; or Annif's result shapes
(--format annif): a NAME.annif file per document of a folder, else one JSON line per document. The files are
opened with taxonomist.atomic.atomic_output, so a failed run keeps the previous file."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

FORMATS = ("tsv", "csv", "jsonl")
ANNIF = "annif"
ANNIF_SUFFIX = ".annif"  # Annif's `index` writes NAME.annif beside NAME.txt
COLUMNS = ("doc_id", "rank", "label_id", "label", "score", "probability")

Row = tuple[str, int, str, str, float, float | None]  # probability: None from a model that is not calibrated
Hit = tuple[str, str, str, float]  # one suggestion of a document: label id (URI), label, notation, score


def write_rows(rows: Iterable[Row], handle: TextIO, fmt: str, *, header: bool = True) -> None:
    if fmt == "jsonl":
        for row in rows:
            handle.write(json.dumps(dict(zip(COLUMNS, row)), ensure_ascii=False) + "\n")
        return
    writer = csv.writer(handle, delimiter="\t" if fmt == "tsv" else ",", lineterminator="\n")
    if header:
        writer.writerow(COLUMNS)
    writer.writerows((d, r, lid, name, f"{score:.4f}", "" if p is None else f"{p:.4f}")
                     for d, r, lid, name, score, p in rows)


def write_annif_hits(hits: Iterable[Hit], handle: TextIO) -> None:
    """A NAME.annif file, as annif.cli_util.show_hits writes it: `<uri>`, label, the notation when there is one,
    and the score to 4 decimals, tab-separated, best first."""
    for uri, label, notation, score in hits:
        fields = (f"<{uri}>", label, notation, f"{score:.4f}") if notation else (f"<{uri}>", label, f"{score:.4f}")
        handle.write("\t".join(fields) + "\n")


def write_annif_result(doc_id: str, hits: Iterable[Hit], handle: TextIO) -> None:
    """One line of Annif's JSONL results (`annif index --no-include-doc` on a corpus file; the REST API's
    suggest-batch): document_id, then results as {uri, label, notation (null if none), score}."""
    results = [{"uri": uri, "label": label, "notation": notation or None, "score": score}
               for uri, label, notation, score in hits]
    handle.write(json.dumps({"document_id": doc_id, "results": results}, ensure_ascii=False) + "\n")


def format_for(path: str | None, requested: str | None) -> str:
    """--format wins (annif only so); else the output file's extension; else TSV."""
    if requested:
        return requested
    suffix = Path(path).suffix.lstrip(".").lower() if path and path != "-" else ""
    return suffix if suffix in FORMATS else "tsv"
