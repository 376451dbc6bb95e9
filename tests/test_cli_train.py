"""The command line from examples to a saved model and back: train, suggest/eval --model, update, labels add."""

from __future__ import annotations

import errno
import json
import os

import pytest
from test_cli import TINY_DOCS, TINY_LABELS, fails, run

from taxonomist import store


@pytest.fixture(autouse=True)
def _fake_encoder(hashing_encoder) -> None:
    """The hashing encoder for every test here (see conftest)."""


@pytest.fixture
def model(tmp_path, capsys):
    path = tmp_path / "model"
    code, _, err = run(capsys, "train", "--labels", TINY_LABELS, "--docs", TINY_DOCS, "--out", path)
    assert code == 0, err
    assert "trained on 54 documents" in err and "model written to" in err
    return path


def test_trained_model_suggests_and_evaluates_without_the_label_file(model, capsys):
    assert (model / "manifest.json").exists()
    code, out, _ = run(capsys, "suggest", "--model", model, "--docs", TINY_DOCS, "-k", "2", "--format", "jsonl")
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and len(rows) == 54 * 2
    code, out, _ = run(capsys, "eval", "--model", model, "--docs", TINY_DOCS, "--json")
    result = json.loads(out)
    assert code == 0 and result["metrics"]["P@1"] > 50  # its own training documents
    assert result["note"] == "label frequencies from 54 training documents"  # the model's, not the gold's


def test_a_model_refuses_another_label_set(model, tmp_path, capsys):
    other = tmp_path / "other.jsonl"
    other.write_text('{"id": "x", "name": "something else"}\n')
    fails(capsys, "suggest", "--model", model, "--labels", other, "--docs", TINY_DOCS, where=str(model),
          what="another label set", fix="leave out --labels")


def test_a_damaged_model_is_refused(model, capsys):
    arrays = next((model / "objects").glob("scorer-prototypes.*")) / "arrays.npz"
    data = bytearray(arrays.read_bytes())
    data[-1] ^= 0xFF
    arrays.write_bytes(bytes(data))
    fails(capsys, "suggest", "--model", model, "--docs", TINY_DOCS, where="scorer-prototypes", what="corrupt",
          fix="copy the model again")


def test_labels_add_makes_new_labels_suggestible(model, tmp_path, capsys):
    new = tmp_path / "new.jsonl"
    new.write_text('{"id": "billing/crypto", "name": "Cryptocurrency payments", "description": "bitcoin wallet '
                   'crypto payment", "parent": "billing"}\n')
    code, _, err = run(capsys, "labels", "add", "--model", model, new)
    assert code == 0 and "added 1 labels" in err
    docs = tmp_path / "docs.txt"
    docs.write_text("bitcoin crypto wallet, crypto payment\n")
    code, out, _ = run(capsys, "suggest", "--model", model, "--docs", docs, "-k", "2", "--no-adapt")
    assert "billing/crypto" in out
    fails(capsys, "labels", "add", "--model", model, new, where=str(new), what="duplicate",
          fix="give each label its own id")


def test_update_folds_in_examples_and_says_what_it_updated(model, tmp_path, capsys):
    more = tmp_path / "more.jsonl"
    more.write_text('{"id": "m1", "text": "refund please", "labels": ["billing/refunds"]}\n'
                    '{"id": "m2", "text": "where is my money back", "labels": ["billing/refunds"]}\n')
    code, _, err = run(capsys, "train", "--model", model, "--update", more)
    assert code == 0 and "2 documents folded" in err and "of 1 labels" in err


def test_unknown_training_labels_are_reported_or_with_strict_an_error(tmp_path, capsys):
    docs = tmp_path / "train.jsonl"
    lines = [json.loads(line) for line in open(TINY_DOCS)]
    lines[3]["labels"] = ["no/such/label"]
    docs.write_text("".join(json.dumps(d) + "\n" for d in lines))
    code, _, err = run(capsys, "train", "--labels", TINY_LABELS, "--docs", docs, "--out", tmp_path / "m")
    assert code == 0 and "no/such/label" in err and "1 documents have no label" in err
    fails(capsys, "train", "--labels", TINY_LABELS, "--docs", docs, "--out", tmp_path / "m2", "--strict",
          where=f"{docs}:4", what="no/such/label", fix="add it to the label set")


def test_training_without_labelled_documents_is_an_error(tmp_path, capsys):
    docs = tmp_path / "train.txt"
    docs.write_text("just text\nmore text\n")
    fails(capsys, "train", "--labels", TINY_LABELS, "--docs", docs, "--out", tmp_path / "m", where=str(docs),
          what="no training documents", fix="'labels' field")


def test_a_full_disk_during_save_keeps_the_previous_model(model, capsys, monkeypatch):
    before = (model / "manifest.json").read_bytes()
    real_replace = os.replace

    def full(src, dst, *a, **k):
        if str(dst).endswith("manifest.json"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_replace(src, dst, *a, **k)

    monkeypatch.setattr(store.os, "replace", full)
    fails(capsys, "train", "--labels", TINY_LABELS, "--docs", TINY_DOCS, "--out", model, where=str(model),
          what="disk full", fix="the previous model")
    monkeypatch.undo()
    assert (model / "manifest.json").read_bytes() == before
    assert store.load_model(model).meta["labels"]["count"] == 32
