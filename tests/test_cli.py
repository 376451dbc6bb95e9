"""End-to-end tests of the command line, run in-process through `main(argv)`.

All but the tests marked `real_encoder` use the hashing encoder from conftest.py: they test the command line, not
the model, and stay fast.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from functools import cache
from pathlib import Path

import pytest

from taxonomist import cli
from taxonomist.cli import main
from taxonomist.encoders import get_encoder
from taxonomist.encoders import transformer as transformer_module
from taxonomist.formats import suggestions

TINY = Path(__file__).resolve().parents[1] / "examples" / "tiny"
TINY_LABELS = str(TINY / "labels.jsonl")
TINY_DOCS = str(TINY / "docs.jsonl")
COLUMNS = ["doc_id", "rank", "label_id", "label", "score", "probability"]
DOCS = [
    {"id": "a", "text": "I was charged twice for the same order on my card.", "labels": ["billing/charges/duplicate"]},
    {"id": "b", "text": "My package has not arrived, tracking shows no movement.", "labels": ["shipping/delivery-delay"]},
    {"id": "c", "text": "The app crashes on startup since the update.", "labels": ["technical/software-bug/crash-on-startup"]},
    {"id": "d", "text": "Please send an invoice with our VAT number on it.", "labels": ["billing/invoices"]},
]


@pytest.fixture(autouse=True)
def _fake_encoder(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("real_encoder") is None:
        request.getfixturevalue("hashing_encoder")


# ---------------------------------------------------------------------------- helpers
def run(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def fails(capsys: pytest.CaptureFixture[str], *argv: object, where: str, what: str, fix: str = "") -> str:
    """Exit code 2 and one clean message of two lines: what is wrong and where, then how to fix it."""
    code, _, err = run(capsys, *argv)
    assert code == 2, err
    assert err.count("taxonomist: error: ") == 1, err  # after any notes or progress, one message
    message = err[err.index("taxonomist: error: "):].rstrip("\n").split("\n")
    assert len(message) == 2 and message[1].startswith("  fix: ") and len(message[1]) > len("  fix: "), err
    assert where in message[0], err
    assert what in message[0], err
    assert fix in message[1], err
    return err


def write_jsonl(path: Path, rows: list[dict | str]) -> Path:
    """Objects become JSON lines; strings are written as they are (for broken lines)."""
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def parse(text: str, fmt: str) -> list[dict]:
    if fmt == "jsonl":
        rows = [json.loads(line) for line in text.splitlines()]
        assert all(list(row) == COLUMNS for row in rows)
        return rows
    reader = csv.DictReader(io.StringIO(text), delimiter="\t" if fmt == "tsv" else ",")
    assert reader.fieldnames == COLUMNS
    return [{**row, "rank": int(row["rank"]), "score": float(row["score"])} for row in reader]


def check_rankings(rows: list[dict], doc_ids: list[str], k: int) -> None:
    """k rows per document, in input order, ranks 1..k, scores in [0, 1] and non-increasing."""
    names = {json.loads(line)["id"]: json.loads(line)["name"] for line in Path(TINY_LABELS).read_text().splitlines()}
    assert list(dict.fromkeys(row["doc_id"] for row in rows)) == doc_ids
    for doc_id in doc_ids:
        mine = [row for row in rows if row["doc_id"] == doc_id]
        assert [row["rank"] for row in mine] == list(range(1, k + 1))
        assert all(names[row["label_id"]] == row["label"] for row in mine)
        assert len({row["label_id"] for row in mine}) == k
        scores = [row["score"] for row in mine]
        assert all(0.0 <= s <= 1.0 for s in scores)
        assert scores == sorted(scores, reverse=True)


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "docs.jsonl", DOCS)


# ---------------------------------------------------------------------------- bad documents
def test_malformed_json_in_docs(tmp_path, capsys):
    path = write_jsonl(tmp_path / "docs.jsonl", [DOCS[0], '{"id": "b", "text": "no closing brace"'])
    fails(capsys, "suggest", "--labels", TINY_LABELS, "--docs", path, where=f"{path}:2", what="malformed JSON")


@pytest.mark.parametrize(
    "bad_row, what",
    [('2,"quoted"then text,x', "malformed row"), ("2,text,billing,extra", "4 fields but the header has 3")],
    ids=["bad-quote", "extra-field"],
)
def test_malformed_csv_docs(tmp_path, capsys, bad_row, what):
    path = tmp_path / "docs.csv"
    path.write_text(f"id,text,labels\n1,fine,billing\n{bad_row}\n3,also fine,\n", encoding="utf-8")
    fails(capsys, "suggest", "--labels", TINY_LABELS, "--docs", path, where=f"{path}:3", what=what)


def test_non_utf8_docs(tmp_path, capsys):
    path = tmp_path / "docs.jsonl"
    path.write_bytes(json.dumps(DOCS[0]).encode() + b'\n{"id": "b", "text": "caf\xe9 au lait"}\n')
    err = fails(capsys, "suggest", "--labels", TINY_LABELS, "--docs", path, where=f"{path}:2", what="not UTF-8")
    assert "iconv" in err  # says how to fix it


def test_document_with_empty_text(tmp_path, capsys):
    path = write_jsonl(tmp_path / "docs.jsonl", [DOCS[0], {"id": "b", "text": "  \t "}])
    fails(capsys, "suggest", "--labels", TINY_LABELS, "--docs", path, where=f"{path}:2, field 'text'",
          what="empty text")


def test_duplicate_document_ids(tmp_path, capsys):
    path = write_jsonl(tmp_path / "docs.jsonl", [DOCS[0], DOCS[1], {**DOCS[2], "id": "a"}])
    fails(capsys, "suggest", "--labels", TINY_LABELS, "--docs", path, where=f"{path}:3, field 'id'",
          what=f"duplicate document id 'a' (first at {path}:1)")


def test_ten_megabyte_document_needs_max_doc_chars(tmp_path, capsys):
    text = "refund please " * 750_000  # 10.5 million characters
    path = write_jsonl(tmp_path / "docs.jsonl", [{"id": "huge", "text": text}, DOCS[1]])
    err = fails(capsys, "suggest", "--labels", TINY_LABELS, "--docs", path, where=f"{path}:1, field 'text'",
                what="a document of 10,500,000 characters, over the limit of 1,000,000")
    assert "--max-doc-chars" in err

    code, out, _ = run(capsys, "suggest", "--labels", TINY_LABELS, "--docs", path, "--no-adapt", "-k", "2",
                       "--max-doc-chars", "20000000")
    assert code == 0
    check_rankings(parse(out, "tsv"), ["huge", "b"], 2)


# ---------------------------------------------------------------------------- bad labels, missing files
def test_unknown_parent_in_labels(tmp_path, capsys):
    path = write_jsonl(tmp_path / "labels.jsonl", [{"id": "a", "name": "A"}, {"id": "b", "name": "B", "parent": "nope"}])
    fails(capsys, "suggest", "--labels", path, "--docs", TINY_DOCS, where=f"{path}:2, field 'parents'",
          what="unknown parent 'nope'")


def test_cycle_in_labels(tmp_path, capsys):
    path = write_jsonl(tmp_path / "labels.jsonl", [
        {"id": "a", "name": "A", "parent": "c"},
        {"id": "b", "name": "B", "parent": "a"},
        {"id": "c", "name": "C", "parent": "b"},
    ])
    err = fails(capsys, "suggest", "--labels", path, "--docs", TINY_DOCS, where=", field 'parents'",
                what="the parents form a cycle")
    assert re.search(rf"{re.escape(str(path))}:[123], field 'parents'", err)


def test_empty_label_set(tmp_path, capsys):
    path = tmp_path / "labels.jsonl"
    path.write_text("", encoding="utf-8")
    fails(capsys, "suggest", "--labels", path, "--docs", TINY_DOCS, where=str(path), what="the label set is empty")


def test_missing_labels_file(tmp_path, capsys):
    path = tmp_path / "nowhere.jsonl"
    fails(capsys, "suggest", "--labels", path, "--docs", TINY_DOCS, where=str(path), what="no such file")


def test_missing_docs_file(tmp_path, capsys):
    path = tmp_path / "nowhere.jsonl"
    fails(capsys, "eval", "--labels", TINY_LABELS, "--docs", path, where=str(path), what="no such file")


def test_labels_check_on_a_good_file(capsys):
    code, out, err = run(capsys, "labels", "check", TINY_LABELS)
    assert code == 0 and err == ""
    assert f"{TINY_LABELS}: 32 labels, OK" in out
    assert "hierarchy: yes; 4 roots, depth 3" in out


def test_labels_check_lists_a_thesaurus_types_and_the_option_that_leaves_category_nodes_out(tmp_path, capsys):
    from test_annif_vocab import THESAURUS

    path = tmp_path / "stw.ttl"
    path.write_text(THESAURUS)
    code, out, _ = run(capsys, "labels", "check", path)
    assert code == 0 and "grouping only: none" in out
    assert "concepts of http://example.org/zbwext/Thsys: 2 (2 with narrower concepts)" in out
    assert "--not-assignable http://example.org/zbwext/Thsys" in out
    code, out, _ = run(capsys, "labels", "check", path, "--not-assignable", "Thsys")
    assert code == 0 and "grouping only (not assignable, never suggested): 2" in out


def test_labels_check_on_a_bad_file(tmp_path, capsys):
    path = write_jsonl(tmp_path / "labels.jsonl", [{"id": "a", "name": "A"}, {"id": "a", "name": "Again"}])
    fails(capsys, "labels", "check", path, where=f"{path}:2, field 'id'", what="duplicate label id 'a'")


# ---------------------------------------------------------------------------- options
def test_skip_invalid_skips_bad_rows_reports_them_and_writes_the_good_ones(tmp_path, capsys):
    path = write_jsonl(tmp_path / "docs.jsonl", [
        DOCS[0],
        "{not json",
        {"id": "e", "text": ""},
        DOCS[1],
        {**DOCS[2], "id": "a"},
        DOCS[3],
    ])
    out = tmp_path / "out.jsonl"
    code, _, err = run(capsys, "suggest", "--labels", TINY_LABELS, "--docs", path, "--skip-invalid", "-k", "2",
                       "--out", out)
    assert code == 0
    assert "skipped 3 invalid documents" in err
    for line in (2, 3, 5):
        assert f"{path}:{line}" in err
    check_rankings(parse(out.read_text(encoding="utf-8"), "jsonl"), ["a", "b", "d"], 2)


def test_eval_reports_gold_labels_unknown_to_the_label_set(tmp_path, capsys):
    path = write_jsonl(tmp_path / "docs.jsonl", [
        {**DOCS[0], "labels": ["billing/charges/duplicate", "nope"]},
        {**DOCS[1], "labels": ["nope", "also-nope"]},
        DOCS[2],
    ])
    code, out, err = run(capsys, "eval", "--labels", TINY_LABELS, "--docs", path)
    assert code == 0
    assert "3 gold labels are not in the label set" in err
    assert "'nope' ×2" in err and "'also-nope' ×1" in err
    assert out.startswith("3 documents, 32 labels")


def test_k_zero_is_refused(docs, capsys):
    fails(capsys, "suggest", "--labels", TINY_LABELS, "--docs", docs, "-k", "0", where="-k",
          what="must be at least 1, got 0")


def stdin(monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))


def test_stdin_with_no_adapt(monkeypatch, capsys):
    stdin(monkeypatch, b"I was charged twice.\n\nMy parcel is late.\n")
    code, out, _ = run(capsys, "suggest", "--labels", TINY_LABELS, "--docs", "-", "--no-adapt", "-k", "3")
    assert code == 0
    check_rankings(parse(out, "tsv"), ["1", "3"], 3)  # ids are line numbers


def test_stdin_needs_no_adapt(monkeypatch, capsys):
    stdin(monkeypatch, b"I was charged twice.\n")
    err = fails(capsys, "suggest", "--labels", TINY_LABELS, "--docs", "-", where="<stdin>",
                what="standard input can be read only once")
    assert "--no-adapt" in err


def test_eval_refuses_stdin(monkeypatch, capsys):
    stdin(monkeypatch, b"I was charged twice.\n")
    fails(capsys, "eval", "--labels", TINY_LABELS, "--docs", "-", "--no-adapt", where="<stdin>",
          what="eval needs gold labels")


# ---------------------------------------------------------------------------- output
@pytest.mark.parametrize("fmt", ["tsv", "csv", "jsonl"])
def test_output_formats_by_extension_and_by_option(tmp_path, capsys, fmt):
    odd = {"id": 'x,"y"\tz', "text": "Where is my refund for the returned headphones?"}
    path = write_jsonl(tmp_path / "docs.jsonl", [*DOCS, odd])
    ids = [d["id"] for d in DOCS] + [odd["id"]]

    out = tmp_path / f"suggestions.{fmt}"
    code, stdout, _ = run(capsys, "suggest", "--labels", TINY_LABELS, "--docs", path, "-k", "3", "--out", out)
    assert code == 0 and stdout == ""
    from_file = parse(out.read_text(encoding="utf-8"), fmt)
    check_rankings(from_file, ids, 3)

    code, stdout, _ = run(capsys, "suggest", "--labels", TINY_LABELS, "--docs", path, "-k", "3", "--format", fmt)
    assert code == 0
    assert parse(stdout, fmt) == from_file


def test_out_replaces_the_previous_file_and_leaves_no_part_file(tmp_path, docs, capsys):
    out = tmp_path / "suggestions.tsv"
    out.write_text("previous\n", encoding="utf-8")
    code, _, err = run(capsys, "suggest", "--labels", TINY_LABELS, "--docs", docs, "-k", "1", "--out", out)
    assert code == 0
    check_rankings(parse(out.read_text(encoding="utf-8"), "tsv"), ["a", "b", "c", "d"], 1)
    assert f"wrote 4 suggestions for 4 documents to {out}" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["docs.jsonl", "suggestions.tsv"]


def test_a_full_disk_mid_write_is_a_clear_error_and_keeps_the_previous_file(tmp_path, docs, capsys, monkeypatch):
    import errno

    def full(rows, handle, fmt, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(suggestions, "write_rows", full)
    out = tmp_path / "suggestions.tsv"
    out.write_text("previous\n", encoding="utf-8")
    fails(capsys, "suggest", "--labels", TINY_LABELS, "--docs", docs, "--out", out, where="",
          what="No space left on device", fix="free disk space")
    assert out.read_text(encoding="utf-8") == "previous\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["docs.jsonl", "suggestions.tsv"]


def test_out_keeps_the_previous_file_when_interrupted_mid_write(tmp_path, docs, capsys, monkeypatch):
    monkeypatch.setattr(cli, "BATCH", 1)
    real_write, calls = suggestions.write_rows, []

    def write_then_interrupt(rows, handle, fmt, **kwargs):
        real_write(rows, handle, fmt, **kwargs)
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(suggestions, "write_rows", write_then_interrupt)
    out = tmp_path / "suggestions.tsv"
    out.write_text("previous\n", encoding="utf-8")
    code, _, err = run(capsys, "suggest", "--labels", TINY_LABELS, "--docs", docs, "--out", out)
    assert code == 130 and "interrupted" in err
    assert len(calls) == 2  # rows were being written when it stopped
    assert out.read_text(encoding="utf-8") == "previous\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["docs.jsonl", "suggestions.tsv"]


def test_out_keeps_the_previous_file_when_a_later_row_is_bad(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cli, "BATCH", 1)
    path = write_jsonl(tmp_path / "docs.jsonl", [DOCS[0], DOCS[1], '{"id": "c", "text": '])
    out = tmp_path / "suggestions.csv"
    out.write_text("previous\n", encoding="utf-8")
    fails(capsys, "suggest", "--labels", TINY_LABELS, "--docs", path, "--no-adapt", "--out", out,
          where=f"{path}:3", what="malformed JSON")
    assert out.read_text(encoding="utf-8") == "previous\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["docs.jsonl", "suggestions.csv"]


def test_out_into_a_missing_folder_fails_before_any_work(tmp_path, docs, capsys):
    out = tmp_path / "no-such-folder" / "out.tsv"
    err = fails(capsys, "suggest", "--labels", TINY_LABELS, "--docs", docs, "--out", out, where=str(out),
                what="the output folder does not exist")
    assert "adapting" not in err


def test_out_that_is_a_folder(tmp_path, docs, capsys):
    fails(capsys, "suggest", "--labels", TINY_LABELS, "--docs", docs, "--out", tmp_path, where=str(tmp_path),
          what="the output is a folder, not a file")


def test_eval_without_gold_labels(tmp_path, capsys):
    path = write_jsonl(tmp_path / "docs.jsonl", [{"id": "a", "text": "charged twice"}, {**DOCS[1], "labels": ["nope"]}])
    err = fails(capsys, "eval", "--labels", TINY_LABELS, "--docs", path, where=str(path),
                what="none of the 2 documents has gold labels from the label set")
    assert "'nope' ×1" in err  # the unknown gold label is named, not silently dropped


def test_eval_json(docs, capsys):
    code, out, _ = run(capsys, "eval", "--labels", TINY_LABELS, "--docs", docs, "-k", "3", "--json")
    assert code == 0
    metrics = json.loads(out)["metrics"]
    assert 0.0 <= metrics["P@1"] <= 100.0
    assert {"P@3", "nDCG@3", "R@3"} <= set(metrics)


@pytest.mark.parametrize("command", ["suggest", "eval"])
def test_quiet_prints_nothing_on_stderr(tmp_path, docs, capsys, command):
    extra = ["--out", tmp_path / "s.tsv"] if command == "suggest" else ["--report", tmp_path / "r.html"]
    code, _, err = run(capsys, command, "--labels", TINY_LABELS, "--docs", docs, *extra)
    assert code == 0 and err  # not quiet: notes and progress
    code, _, err = run(capsys, command, "--labels", TINY_LABELS, "--docs", docs, *extra, "--quiet")
    assert code == 0
    assert err == ""


# ---------------------------------------------------------------------------- the real default encoder
@cache
def _default_encoder():
    return get_encoder("default")


@pytest.mark.real_encoder
@pytest.mark.parametrize("adapt", [
    pytest.param(["--no-adapt"], id="no-adapt"),
    pytest.param([], id="adapted"),
])
def test_real_encoder_suggest_then_eval_on_tiny(tmp_path, capsys, monkeypatch, adapt):
    # the real encoder, loaded once for both cases: loading MiniLM costs seconds on a busy machine
    monkeypatch.setattr("taxonomist.encoders.get_encoder", lambda spec, **_: _default_encoder())
    out = tmp_path / "suggestions.tsv"
    code, _, _ = run(capsys, "suggest", "--labels", TINY_LABELS, "--docs", TINY_DOCS, "-k", "3", "--out", out, *adapt)
    assert code == 0
    rows = parse(out.read_text(encoding="utf-8"), "tsv")
    doc_ids = [json.loads(line)["id"] for line in Path(TINY_DOCS).read_text(encoding="utf-8").splitlines()]
    check_rankings(rows, doc_ids, 3)
    assert rows[0]["doc_id"] == "t001" and rows[0]["label_id"].startswith("billing")

    report = tmp_path / "report.html"
    code, text, err = run(capsys, "eval", "--labels", TINY_LABELS, "--docs", TINY_DOCS, "--report", report, *adapt)
    assert code == 0
    assert f"wrote report to {report}" in err
    assert report.read_text(encoding="utf-8").lstrip().lower().startswith("<!doctype html")
    precision = re.search(r"^P\s+([\d.]+)", text, re.MULTILINE)
    assert precision, text
    assert float(precision.group(1)) > 60.0, text


@pytest.mark.real_encoder
def test_model_checksum_mismatch(monkeypatch, capsys):
    monkeypatch.setattr(transformer_module, "DEFAULT_MODEL_SHA256", "0" * 64)
    err = fails(capsys, "suggest", "--labels", TINY_LABELS, "--docs", TINY_DOCS, "--no-adapt",
                where="model.safetensors", what="checksum mismatch: expected sha256 " + "0" * 64)
    assert "pip install --force-reinstall" in err


def test_labels_check_reads_an_annif_vocabulary_in_the_chosen_language(capsys):
    vocab = Path(__file__).parent / "data" / "annif_vocab.csv"
    code, out, _ = run(capsys, "labels", "check", vocab, "--language", "fi")
    assert code == 0 and "3 labels, OK" in out  # the deprecated row (all labels empty) is skipped
    code, out, _ = run(capsys, "suggest", "--labels", vocab, "--language", "fi", "--docs", TINY_DOCS, "-k", "1",
                       "--no-adapt", "--format", "jsonl")
    assert code == 0
    names = {json.loads(line)["label"] for line in out.splitlines()}
    assert names <= {"Tiede", "Fysiikka", "Biologia"}
