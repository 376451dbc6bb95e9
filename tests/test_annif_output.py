"""Annif's outputs from the command line: .annif files beside a folder's documents, Annif's JSONL results, Annif's
metrics and per-subject report in eval, and --strict for gold subjects the vocabulary lacks."""

from __future__ import annotations

import json
import re

import pytest
from conftest import write

from taxonomist.cli import main

PHYS, BIO, CHEM = "http://ex.org/phys", "http://ex.org/bio", "http://ex.org/chem"
VOCAB = f"<{PHYS}>\tPhysics\t530\n<{BIO}>\tBiology\n<{CHEM}>\tChemistry\n"
ANNIF_LINE = re.compile(r"<(http://ex\.org/\w+)>\t(\w+)(?:\t(\d+))?\t(\d\.\d{4})")
ANNIF_NAMES = [
    "Precision (doc avg)", "Recall (doc avg)", "F1 score (doc avg)",
    "Precision (subj avg)", "Recall (subj avg)", "F1 score (subj avg)",
    "Precision (weighted subj avg)", "Recall (weighted subj avg)", "F1 score (weighted subj avg)",
    "Precision (microavg)", "Recall (microavg)", "F1 score (microavg)",
    "F1@5", "NDCG", "NDCG@5", "NDCG@10", "Precision@1", "Precision@3", "Precision@5",
    "True positives", "False positives", "False negatives", "Documents evaluated",
]


@pytest.fixture(autouse=True)
def _fake_encoder(hashing_encoder):
    """The hashing encoder: these tests check files and numbers' plumbing, not the model."""


@pytest.fixture
def vocab(tmp_path):
    return write(tmp_path, "vocab.tsv", VOCAB)


@pytest.fixture
def folder(tmp_path):
    """a: subjects by URI (.tsv); b: by label (.key); c: no subject file."""
    docs = tmp_path / "docs"
    docs.mkdir()
    write(docs, "a.txt", "Quantum physics of particles and fields.")
    write(docs, "a.tsv", f"<{PHYS}>\tPhysics\n")
    write(docs, "b.txt", "Cells, genes and the biology of living things.")
    write(docs, "b.key", "Biology\nPhysics\n")
    write(docs, "c.txt", "Chemical reactions of acids.")
    return docs


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def read_annif(path):
    """(uri, label, notation, score) per line; every line must have Annif's shape."""
    lines = path.read_text(encoding="utf-8").splitlines()
    matches = [ANNIF_LINE.fullmatch(line) for line in lines]
    assert all(matches), lines
    return [(m[1], m[2], m[3], float(m[4])) for m in matches]


# ---------------------------------------------------------------------------- suggest --format annif
def test_annif_files_beside_each_document(capsys, vocab, folder):
    code, out, _ = run(capsys, "suggest", "--labels", vocab, "--docs", folder, "--format", "annif", "-k", "3")
    assert code == 0 and out == ""
    assert sorted(p.name for p in folder.glob("*.annif")) == ["a.annif", "b.annif", "c.annif"]
    assert not list(folder.glob(".*.part"))  # written atomically: no temporary files left
    for path in folder.glob("*.annif"):
        hits = read_annif(path)
        assert len(hits) == 3 and len({uri for uri, *_ in hits}) == 3
        scores = [score for *_, score in hits]
        assert scores == sorted(scores, reverse=True)
        names = {PHYS: ("Physics", "530"), BIO: ("Biology", None), CHEM: ("Chemistry", None)}
        assert all(names[uri] == (label, notation) for uri, label, notation, _ in hits)  # notation when there is one


def test_existing_annif_files_need_force(capsys, vocab, folder):
    write(folder, "b.annif", "old results\n")
    argv = ["suggest", "--labels", vocab, "--docs", folder, "--format", "annif", "--no-adapt"]
    code, _, err = run(capsys, *argv)
    assert code == 2 and err.count("taxonomist: error:") == 1
    assert f"{folder / 'b.annif'}: 1 of the 3 .annif files to write exist already" in err and "--force" in err
    assert not (folder / "a.annif").exists()  # refused before any work, not half done
    assert (folder / "b.annif").read_text() == "old results\n"
    code, _, _ = run(capsys, *argv, "--force")
    assert code == 0 and len(read_annif(folder / "b.annif")) == 3  # the whole vocabulary


def test_annif_files_into_an_output_folder(capsys, tmp_path, vocab, folder):
    out = tmp_path / "results"
    out.mkdir()
    code, _, _ = run(capsys, "suggest", "--labels", vocab, "--docs", folder, "--format", "annif", "--out", out)
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.annif", "b.annif", "c.annif"]
    assert not list(folder.glob("*.annif"))


def test_annif_format_on_a_folder_refuses_an_output_file(capsys, tmp_path, vocab, folder):
    code, _, err = run(capsys, "suggest", "--labels", vocab, "--docs", folder, "--format", "annif",
                       "--out", tmp_path / "all.jsonl")
    assert code == 2 and "--out must then be a folder" in err and "--format jsonl" in err


def test_annif_jsonl_results_for_a_corpus_file(capsys, tmp_path, vocab):
    corpus = write(tmp_path, "corpus.tsv", f"Quantum physics\t<{PHYS}>\nLiving cells\t<{BIO}>\n")
    out = tmp_path / "results.jsonl"
    code, _, _ = run(capsys, "suggest", "--labels", vocab, "--docs", corpus, "--format", "annif", "-k", "2",
                     "--out", out)
    assert code == 0
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [line["document_id"] for line in lines] == ["1", "2"]
    for line in lines:
        assert list(line) == ["document_id", "results"]
        assert len(line["results"]) == 2
        for result in line["results"]:
            assert list(result) == ["uri", "label", "notation", "score"]
            assert result["notation"] == ("530" if result["uri"] == PHYS else None)


# ---------------------------------------------------------------------------- eval: Annif's metrics
def test_eval_prints_annif_metrics_and_evaluates_only_documents_with_subjects(capsys, vocab, folder):
    code, out, _ = run(capsys, "eval", "--labels", vocab, "--docs", folder)
    assert code == 0
    block = out.split("Annif's metrics, as annif eval prints them (--limit 10 --threshold 0)\n")[1].splitlines()
    assert [line.split("\t")[0].rstrip().rstrip(":") for line in block] == ANNIF_NAMES
    assert block[-1] == "Documents evaluated:          \t2"  # c.txt has no subject file: Annif skips it too
    assert out.startswith("3 documents")  # our metrics count every document


def test_eval_json_has_an_annif_section_with_its_settings(capsys, vocab, folder):
    code, out, _ = run(capsys, "eval", "--labels", vocab, "--docs", folder, "--json", "--annif-limit", "1",
                       "--annif-threshold", "0.01")
    assert code == 0
    annif = json.loads(out)["annif"]
    assert (annif["limit"], annif["threshold"]) == (1, 0.01)
    assert list(annif["metrics"]) == ANNIF_NAMES
    # limit 1: one suggestion per document at most; gold: a {phys}, b {bio, phys}
    m = annif["metrics"]
    assert m["True positives"] + m["False positives"] <= 2
    assert m["True positives"] + m["False negatives"] == 3


def test_eval_per_label_report(capsys, tmp_path, vocab, folder):
    report = tmp_path / "per_label.tsv"
    code, _, err = run(capsys, "eval", "--labels", vocab, "--docs", folder, "--per-label", report)
    assert code == 0 and f"wrote the per-label report to {report}" in err
    rows = [line.split("\t") for line in report.read_text(encoding="utf-8").splitlines()]
    assert rows[0] == ["URI", "Label", "Support", "True_positives", "False_positives", "False_negatives",
                       "Precision", "Recall", "F1_score"]
    assert [(uri, label, support) for uri, label, support, *_ in rows[1:]] == [
        (PHYS, "Physics", "2"), (BIO, "Biology", "1"), (CHEM, "Chemistry", "0")
    ]
    for _, _, support, tp, fp, fn, *_ in rows[1:]:
        assert int(tp) + int(fn) == int(support)


def test_per_label_report_into_a_missing_folder_fails_before_any_work(capsys, tmp_path, vocab, folder, monkeypatch):
    monkeypatch.setattr("taxonomist.cli._prepare", lambda *a, **k: pytest.fail("should not get this far"))
    code, _, err = run(capsys, "eval", "--labels", vocab, "--docs", folder, "--per-label", tmp_path / "no" / "x.tsv")
    assert code == 2 and "the output folder does not exist" in err


def test_annif_limit_must_be_positive(capsys, vocab, folder):
    code, _, err = run(capsys, "eval", "--labels", vocab, "--docs", folder, "--annif-limit", "0")
    assert code == 2 and "--annif-limit must be at least 1" in err


# ---------------------------------------------------------------------------- unknown subjects: reported or --strict
@pytest.mark.parametrize("command", ["eval", "suggest"])
def test_strict_makes_an_unknown_uri_an_error_naming_file_and_line(capsys, tmp_path, vocab, command):
    corpus = write(tmp_path, "corpus.tsv", f"Quantum physics\t<{PHYS}>\nLiving cells\t<http://ex.org/nope>\n")
    code, _, err = run(capsys, command, "--labels", vocab, "--docs", corpus, "--strict")
    assert code == 2 and err.count("taxonomist: error:") == 1
    assert f"{corpus}:2: the gold label 'http://ex.org/nope' is not in the label set" in err


def test_strict_fails_while_reading_before_any_encoding(capsys, tmp_path, vocab, monkeypatch):
    corpus = write(tmp_path, "corpus.tsv", "Living cells\t<http://ex.org/nope>\n")
    monkeypatch.setattr("taxonomist.classifier.Classifier.fit", lambda *a, **k: pytest.fail("encoded first"))
    code, _, err = run(capsys, "suggest", "--labels", vocab, "--docs", corpus, "--strict")
    assert code == 2 and f"{corpus}:1:" in err


def test_strict_error_comes_from_the_key_file_and_line(capsys, vocab, folder):
    write(folder, "b.key", "Biology\nAstrology\n")
    code, _, err = run(capsys, "eval", "--labels", vocab, "--docs", folder, "--strict", "--no-adapt")
    assert code == 2
    assert f"{folder / 'b.key'}:2: the subject 'Astrology', given by its label, matches no label's name" in err


def test_without_strict_unknown_subjects_are_reported_by_file_and_line(capsys, vocab, folder):
    write(folder, "a.tsv", f"<{PHYS}>\tPhysics\n<http://ex.org/nope>\tNope\n")
    write(folder, "b.key", "Biology\nAstrology\n")
    code, out, err = run(capsys, "eval", "--labels", vocab, "--docs", folder)
    assert code == 0 and out
    assert "2 gold labels are not in the label set" in err
    assert f"{folder / 'a.tsv'}:2: 'http://ex.org/nope'" in err
    assert f"{folder / 'b.key'}:2: 'label:Astrology'" in err
