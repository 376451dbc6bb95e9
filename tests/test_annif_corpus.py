import gzip
from collections import Counter
from pathlib import Path

import pytest
from conftest import document_error as error_of
from conftest import write

from taxonomist.readers import read_documents
from taxonomist.formats import detect_documents
from taxonomist.labels import Label, LabelSet

DATA = Path(__file__).parent / "data"
PHYS, SCI, BIO = "http://ex.org/phys", "http://ex.org/sci", "http://ex.org/bio"




@pytest.mark.parametrize("name", ["annif_corpus_short.tsv", "annif_corpus_short.tsv.gz"])
def test_short_text_tsv_plain_and_gzipped(name):
    docs = list(read_documents(DATA / name))
    assert [d.id for d in docs] == ["1", "2", "4"]  # line numbers; the blank line 3 still counts
    assert docs[0].text == "Quantum fields and particles"
    assert [d.labels for d in docs] == [(PHYS, SCI), (BIO,), None]  # brackets stripped; no subjects: unlabeled
    assert docs[2].where.endswith(f"{name}:4")


def test_tsv_line_without_a_tab_names_file_and_line(tmp_path):
    path = write(tmp_path, "c.tsv", f"Quantum\t<{PHYS}>\nno tab here\n")
    error = error_of(path)
    assert error.where == f"{path}:2"
    assert str(error).startswith(f"{path}:2: no tab between the text and its subjects")
    stream = read_documents(path, skip_invalid=True)
    assert [d.id for d in stream] == ["1"] and stream.skipped == 1


def test_tsv_splits_at_the_first_tab_only(tmp_path):
    path = write(tmp_path, "c.tsv", f"Title\t<{PHYS}>\t<{SCI}>  <{PHYS}>\n")
    assert detect_documents(path) == "annif-tsv"
    [doc] = read_documents(path)
    assert doc.text == "Title" and doc.labels == (PHYS, SCI)  # any whitespace separates; duplicates once


def test_damaged_gzip_is_an_input_error(tmp_path):
    data = gzip.compress(f"Title\t<{PHYS}>\n".encode() * 2000)
    path = write(tmp_path, "c.tsv.gz", data[: len(data) // 2])
    assert "decompress" in error_of(path).what


def test_other_compressed_files_are_refused_with_a_fix(tmp_path):
    path = write(tmp_path, "d.jsonl.gz", gzip.compress(b'{"id": "a", "text": "x"}\n'))
    assert "gunzip" in error_of(path).fix


def test_csv_corpus():
    docs = list(read_documents(DATA / "annif_corpus.csv"))
    assert [d.id for d in docs] == ["d1", "d2", "4"]  # no document_id: the line number
    assert docs[0].text == "Quantum fields, and particles."
    assert [d.labels for d in docs] == [(PHYS, SCI), (BIO,), None]


def test_jsonl_corpus_keeps_labels_it_cannot_resolve_visible():
    docs = list(read_documents(DATA / "annif_corpus.jsonl"))
    assert [d.id for d in docs] == ["d1", "2", "d3"]
    assert [d.labels for d in docs] == [(PHYS, SCI), ("label:Biology",), None]
    labels = LabelSet([Label(id=PHYS, name="physics"), Label(id=SCI, name="science"), Label(id=BIO, name="bio")])
    stream = read_documents(DATA / "annif_corpus.jsonl", label_set=labels)
    assert [d.labels for d in stream][1] == ()
    assert stream.unknown_labels == Counter({"label:Biology": 1})


@pytest.mark.parametrize("subjects", ['"x"', '["http://ex.org/a"]', '[{"notation": "1"}]'])
def test_jsonl_malformed_subjects(tmp_path, subjects):
    path = write(tmp_path, "c.jsonl", f'{{"document_id": "a", "text": "x", "subjects": {subjects}}}\n')
    assert error_of(path).where == f"{path}:1, field 'subjects'"


def test_full_text_folder_with_tsv_and_key_subject_files():
    docs = list(read_documents(DATA / "annif_corpus_folder"))
    assert [d.id for d in docs] == ["a", "b", "c"]
    assert docs[0].text == "Quantum fields." and docs[0].labels == (PHYS, SCI)
    assert docs[1].labels == ("label:Biology", "label:Cells")
    assert docs[2].labels is None


def test_labels_file_wins_over_annif_subject_files(tmp_path):
    write(tmp_path, "a.txt", "Quantum.")
    write(tmp_path, "a.labels", "phys\n")
    write(tmp_path, "a.tsv", f"<{SCI}>\tscience\n")
    [doc] = read_documents(tmp_path)
    assert doc.labels == ("phys",)


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("docs_small.tsv", "tsv"),
        ("docs_small.csv", "csv"),
        ("docs_small.jsonl", "jsonl"),
        ("annif_corpus_short.tsv", "annif-tsv"),
        ("annif_corpus_short.tsv.gz", "annif-tsv"),
        ("annif_corpus.csv", "annif-csv"),
        ("annif_corpus.jsonl", "annif-jsonl"),
        ("annif_corpus_folder", "textdir"),
    ],
)
def test_detection(name, kind):
    assert detect_documents(DATA / name) == kind


def test_headerless_tsv_of_plain_text_stays_ours(tmp_path):
    """Without URIs after the tab it is not Annif's corpus: our reader reports the missing header."""
    path = write(tmp_path, "d.tsv", "a\tplain words\n")
    assert detect_documents(path) == "tsv"
    assert "header" in error_of(path).what


def test_our_tsv_with_uri_labels_stays_ours(tmp_path):
    path = write(tmp_path, "d.tsv", f"id\ttext\tlabels\nd1\tQuantum.\t{PHYS}\n")
    assert detect_documents(path) == "tsv"
    [doc] = read_documents(path)
    assert doc.id == "d1" and doc.labels == (PHYS,)


def test_subjects_given_by_label_resolve_through_the_vocabulary_names():
    """Annif's JSONL and .key files may name a subject by its preferred label: it becomes that label's id
    (case-insensitively); a name the vocabulary lacks stays visible as unknown."""
    labels = LabelSet([Label(id=PHYS, name="Physics"), Label(id=SCI, name="science"), Label(id=BIO, name="Biology")])
    stream = read_documents(DATA / "annif_corpus.jsonl", label_set=labels)
    assert [d.labels for d in stream] == [(PHYS, SCI), (BIO,), None]
    assert not stream.unknown_labels
