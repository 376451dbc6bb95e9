import io
import sys
from collections import Counter
from itertools import islice
from pathlib import Path

import pytest
from conftest import document_error as error_of
from conftest import write

from taxonomist.corpus import Document, batches
from taxonomist.readers import read_documents
from taxonomist.errors import InputError
from taxonomist.labels import Label, LabelSet

DATA = Path(__file__).parent / "data"




@pytest.fixture
def stdin(monkeypatch):
    def feed(data: bytes) -> None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))

    return feed


# --- formats -----------------------------------------------------------------------------------------


def test_jsonl():
    docs = list(read_documents(DATA / "docs_small.jsonl"))
    assert [d.id for d in docs] == ["d1", "2", "d3", "d4"]  # an integer id becomes a string
    assert docs[0].text == "Quantum fields and particles."
    assert [d.labels for d in docs] == [("phys",), ("bio", "sci"), None, ()]  # missing: unlabeled; []: none
    assert docs[2].where.endswith("docs_small.jsonl:4")  # blank line 3 passed over, still counted


def test_csv_with_quoted_commas_and_newlines():
    docs = list(read_documents(DATA / "docs_small.csv"))
    assert [d.id for d in docs] == ["d1", "d2", "d3"]
    assert docs[0].text == "Quantum fields, and particles."
    assert docs[1].text == "Cells\ndivide." and docs[1].labels == ("bio", "sci")
    assert docs[2].labels is None  # empty cell: unlabeled
    assert [d.where.rsplit(":", 1)[1] for d in docs] == ["2", "3", "5"]  # a record's first line


def test_tsv_keeps_quote_marks():
    docs = list(read_documents(DATA / "docs_small.tsv"))
    assert docs[0].text == '"Quantum" fields.' and docs[1].labels == ("bio", "sci")


def test_plain_text_one_document_per_line():
    docs = list(read_documents(DATA / "docs_lines.txt"))
    assert [(d.id, d.text) for d in docs] == [("1", "First document."), ("3", "Third line document.")]
    assert all(d.labels is None for d in docs)


def test_folder_of_text_files_with_sibling_labels():
    docs = list(read_documents(DATA / "docs_folder"))
    assert [d.id for d in docs] == ["a", "b"]  # notes.md is not a document
    assert docs[0].text == "Quantum fields." and docs[0].labels == ("phys", "sci")
    assert docs[1].text == "Cells divide.\n" and docs[1].labels is None  # byte-order mark removed
    assert docs[0].where.endswith("a.txt")


def test_stdin_one_document_per_line_read_once(stdin):
    stdin(b"first\n\nthird\n")
    stream = read_documents("-")
    assert [(d.id, d.text, d.where) for d in stream] == [("1", "first", "<stdin>:1"), ("3", "third", "<stdin>:3")]
    with pytest.raises(InputError, match="only once"):
        list(stream)


def test_stdin_bad_bytes(stdin):
    stdin(b"ok\nbad \xff\n")
    e = error_of("-")
    assert e.where == "<stdin>:2" and "UTF-8" in e.what


def test_unknown_extension_sniffed(tmp_path):
    assert [d.id for d in read_documents(write(tmp_path, "dump", '{"id": "x", "text": "t"}\n'))] == ["x"]
    assert [d.text for d in read_documents(write(tmp_path, "notes", "a line, with a comma\n"))] == ["a line, with a comma"]
    assert [d.id for d in read_documents(write(tmp_path, "table", "id\ttext\nx\ty\n"))] == ["x"]


def test_long_csv_field_beyond_the_csv_module_default(tmp_path):
    text = "word " * 40_000  # 200,000 characters; the csv module stops at 131,072 by default
    (doc,) = read_documents(write(tmp_path, "d.csv", f"text\n{text}\n"))
    assert doc.text == text


# --- streaming ---------------------------------------------------------------------------------------


def test_streams_lazily_and_each_pass_rereads(tmp_path):
    path = write(tmp_path, "d.jsonl", '{"id": "a", "text": "A"}\n{"id": "b", "text": "B"}\n{broken\n')
    stream = read_documents(path)  # nothing read yet: no error
    assert [d.id for d in islice(stream, 2)] == ["a", "b"]
    with pytest.raises(InputError):
        list(stream)
    path.write_text('{"id": "a", "text": "A"}\n')
    assert [d.id for d in stream] == ["a"]


def test_folder_files_read_when_reached(tmp_path):
    write(tmp_path, "a.txt", "fine")
    write(tmp_path, "b.txt", b"\xff")
    assert next(iter(read_documents(tmp_path))).id == "a"


def test_batches():
    docs = [Document(str(i), "t") for i in range(5)]
    assert [[d.id for d in b] for b in batches(docs, 2)] == [["0", "1"], ["2", "3"], ["4"]]
    assert list(batches([], 3)) == []
    with pytest.raises(ValueError):
        list(batches(docs, 0))


# --- bad input ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "field", "what"),
    [
        ('{"id": "b", "text": "x",}', None, "malformed JSON"),
        ('{"id": "b"}', "text", "missing 'text'"),
        ('{"id": "b", "text": "   "}', "text", "empty text"),
        ('{"id": "b", "text": 42}', "text", "must be a string"),
        ('{"id": "b", "text": ["x"]}', "text", "must be a string"),
        ('{"id": "b", "text": "x", "labels": "phys"}', "labels", "list of strings"),
        ('{"id": "b", "text": "x", "labels": ["phys", 3]}', "labels", "list of strings"),
        ('{"id": true, "text": "x"}', "id", "must be a string"),
        ('"just a string"', None, "expected a JSON object"),
    ],
)
def test_jsonl_row_errors_name_file_line_and_field(tmp_path, line, field, what):
    e = error_of(write(tmp_path, "docs.jsonl", '{"id": "a", "text": "fine"}\n' + line + "\n"))
    assert what in e.what
    assert "docs.jsonl:2" in e.where
    if field:
        assert f"'{field}'" in e.where


def test_malformed_json_says_what_json_says(tmp_path):
    e = error_of(write(tmp_path, "docs.jsonl", '{"id": "a" "text": "x"}\n'))
    assert "Expecting ',' delimiter" in e.what and "column" in e.what


@pytest.mark.parametrize(
    ("name", "content", "where"),
    [
        ("d.jsonl", b'{"id": "a", "text": "ok"}\n{"id": "b", "text": "caf\xe9"}\n', "d.jsonl:2"),
        ("d.csv", b"id,text\na,ok\nb,\"two\nlines caf\xe9\"\n", "d.csv:4"),
        ("d.tsv", b"id\ttext\na\tok\nb\tcaf\xe9\n", "d.tsv:3"),
        ("d.txt", b"ok\ncaf\xe9\n", "d.txt:2"),
    ],
)
def test_non_utf8_bytes_give_the_line(tmp_path, name, content, where):
    e = error_of(write(tmp_path, name, content))
    assert e.where.endswith("/" + where) and "UTF-8" in e.what and "\\xe9" in e.what


def test_non_utf8_in_a_folder_file_gives_its_line(tmp_path):
    write(tmp_path, "a.txt", b"line one\nline \xe9 two\n")
    e = error_of(tmp_path)
    assert e.where.endswith("a.txt:2") and "byte 6" in e.what


def test_non_utf8_in_a_labels_file(tmp_path):
    write(tmp_path, "a.txt", "text")
    write(tmp_path, "a.labels", b"phys\n\xe9\n")
    assert error_of(tmp_path).where.endswith("a.labels:2")


@pytest.mark.parametrize(
    ("name", "content", "where"),
    [
        ("d.jsonl", '{"id": "a", "text": "' + "x" * 101 + '"}\n', "d.jsonl:1"),
        ("d.csv", "id,text\na," + "x" * 101 + "\n", "d.csv:2"),
        ("d.csv", "id,text\na," + "x" * 200_000 + "\n", "d.csv:2"),  # past the csv module's own guard
        ("d.txt", "short\n" + "x" * 101 + "\n", "d.txt:2"),
    ],
)
def test_too_long_says_size_and_fix(tmp_path, name, content, where):
    e = error_of(write(tmp_path, name, content), max_chars=100)
    assert e.where.split(",")[0].endswith("/" + where)
    assert "100" in e.what and "--max-doc-chars" in e.fix and "split" in e.fix


@pytest.mark.parametrize("size", [101, 1000])  # read and measured; or refused from its size alone
def test_too_long_folder_file(tmp_path, size):
    write(tmp_path, "a.txt", "x" * size)
    e = error_of(tmp_path, max_chars=100)
    assert "a.txt" in e.where and f"{size:,}" in e.what and "--max-doc-chars" in e.fix


@pytest.mark.parametrize(
    ("name", "content", "first", "second"),
    [
        ("d.jsonl", '{"id": "a", "text": "x"}\n{"id": "b", "text": "x"}\n{"id": "a", "text": "y"}\n',
         "d.jsonl:1", "d.jsonl:3"),
        ("d.csv", "id,text\na,x\n\nb,y\na,z\n", "d.csv:2", "d.csv:5"),
    ],
)
def test_duplicate_ids_name_both_lines(tmp_path, name, content, first, second):
    e = error_of(write(tmp_path, name, content))
    assert f"/{second}" in e.where and f"/{first}" in e.what and "'a'" in e.what


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="no such file") as info:
        read_documents(tmp_path / "nope.jsonl")  # at once, not on iteration
    assert "nope.jsonl" in info.value.where


def test_csv_without_text_column(tmp_path):
    e = error_of(write(tmp_path, "d.csv", "id,body\na,x\n"))
    assert "'text'" in e.what and "d.csv:1" in e.where and "'body'" in e.what


def test_csv_extra_fields(tmp_path):
    e = error_of(write(tmp_path, "d.csv", "id,text\na,one, two\n"))
    assert "d.csv:2" in e.where and "quote" in e.fix


def test_empty_folder(tmp_path):
    write(tmp_path, "notes.md", "x")
    e = error_of(tmp_path)
    assert "no .txt files" in e.what


def test_rdf_is_not_documents(tmp_path):
    with pytest.raises(InputError, match="RDF"):
        read_documents(write(tmp_path, "d.ttl", "x"))


def test_skip_invalid_counts_and_keeps_messages(tmp_path):
    path = write(
        tmp_path,
        "d.jsonl",
        b'{"id": "a", "text": "fine"}\n{oops\n{"id": "b"}\n{"id": "c", "text": "caf\xe9"}\n'
        b'{"id": "a", "text": "again"}\n{"id": "d", "text": "' + b"x" * 50 + b'"}\n{"id": "e", "text": "fine too"}\n',
    )
    stream = read_documents(path, skip_invalid=True, max_chars=40)
    assert [d.id for d in stream] == ["a", "e"]
    assert stream.skipped == 5
    assert all(f"d.jsonl:{line}" in problem for line, problem in zip("23456", stream.problems, strict=True))
    assert [d.id for d in stream] == ["a", "e"] and stream.skipped == 5  # a fresh pass starts fresh counts


def test_skip_invalid_csv_keeps_in_step_after_a_bad_row(tmp_path):
    path = write(tmp_path, "d.csv", b'id,text\na,"x"y\nb,caf\xe9\nc,fine\n')
    stream = read_documents(path, skip_invalid=True)
    assert [d.id for d in stream] == ["c"] and stream.skipped == 2


def test_unknown_gold_labels_are_counted_not_lost(tmp_path):
    label_set = LabelSet([Label("phys", "Physics"), Label("bio", "Biology")])
    path = write(
        tmp_path,
        "d.jsonl",
        '{"id": "1", "text": "a", "labels": ["phys", "chem"]}\n{"id": "2", "text": "b", "labels": ["chem", "geo"]}\n'
        '{"id": "3", "text": "c"}\n',
    )
    stream = read_documents(path, label_set=label_set)
    assert [d.labels for d in stream] == [("phys",), (), None]
    assert stream.unknown_labels == Counter({"chem": 2, "geo": 1})
