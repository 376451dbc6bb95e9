"""Files in, label sets and document streams out: the format is detected from the path (see formats/). This is
the layer above both the data types (labels.py, corpus.py) and the file families that build them (formats/)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .corpus import DocumentStream
from .formats import document_reader, read_label_file
from .labels import LabelSet


def read_labels(path: str | Path, language: str = "en", not_assignable: Sequence[str] = ()) -> LabelSet:
    """Read a label file. `language` picks the names of multilingual vocabularies (SKOS, Annif CSV);
    single-language formats ignore it. `not_assignable`: SKOS concept types or schemes of grouping labels."""
    return LabelSet(read_label_file(Path(path), language, not_assignable), source=str(path))


def read_documents(
    path: str | Path,
    *,
    skip_invalid: bool = False,
    max_chars: int = 1_000_000,
    label_set: LabelSet | None = None,
    strict: bool = False,
) -> DocumentStream:
    """Documents from a .jsonl, .csv, .tsv or .txt file (one per line), a folder of .txt files, or "-" (stdin,
    one per line). `strict`: a gold label that `label_set` lacks is an error (see DocumentStream)."""
    return DocumentStream(document_reader(path, max_chars), source=str(path), skip_invalid=skip_invalid,
                          max_chars=max_chars, label_set=label_set, strict=strict)
