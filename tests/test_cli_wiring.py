"""Each command-line option reaches the Project and changes what it should; `eval --json` reports what
evaluate() computes on the same rankings; `train --update` changes the saved model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_cli import TINY_DOCS, TINY_LABELS, fails, run

from taxonomist import project as project_module
from taxonomist.config import Config
from taxonomist.evaluate import evaluate
from taxonomist.persist import read_model
from taxonomist.project import Project
from taxonomist.readers import read_documents, read_labels


@pytest.fixture(autouse=True)
def _fake_encoder(hashing_encoder) -> None:
    """The hashing encoder for every test here (see conftest)."""


@pytest.fixture
def projects(monkeypatch) -> list[Project]:
    """Every Project the command line makes, as it made it."""
    made: list[Project] = []
    real = project_module.Project.__init__

    def spy(self, *args, **kwargs):
        real(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(project_module.Project, "__init__", spy)
    return made


def test_context_hierarchy_and_encoder_reach_the_model(capsys, projects):
    code, _, err = run(capsys, "suggest", "--labels", TINY_LABELS, "--docs", TINY_DOCS, "--context", "retail, shop",
                       "--hierarchy", "off", "--encoder", "static", "--format", "jsonl")
    assert code == 0, err
    model = projects[-1].model
    assert model.contexts == ("retail", "shop") and model.config.label_text.context == "retail, shop"
    assert "context: retail, shop (asked for)" in err
    assert model.config.label_text.hierarchy == "off" and model.scoring.hierarchy is None
    assert model.encoder_spec == "static"  # the spec the encoder was resolved from
    code, _, err = run(capsys, "suggest", "--labels", TINY_LABELS, "--docs", TINY_DOCS, "--format", "jsonl")
    # the tiny documents are filed under their labels' ancestors too: "auto" reads "broad" off them, and says so
    assert projects[-1].model.scoring.hierarchy is not None and projects[-1].model.hierarchy_mode == "broad"
    assert "hierarchy: broad (with 'broad' the documents' first labels spread over" in err


def test_unlabeled_documents_are_what_the_model_adapts_to(capsys, projects, tmp_path):
    unlabeled = tmp_path / "unlabeled.txt"
    unlabeled.write_text("".join(f"a refund for order {i}, money back please\n" for i in range(70)))
    code, _, err = run(capsys, "suggest", "--labels", TINY_LABELS, "--docs", TINY_DOCS, "--unlabeled", unlabeled)
    assert code == 0 and "adapting to 70 unlabeled documents" in err
    assert "adaptation: on (70 unlabeled documents adapted to)" in err
    assert "label prior: on" in err and "propagation: " in err and "self-training: " in err  # each step's choice
    adaptation = projects[-1].model.adaptation
    assert adaptation is not None and adaptation.posteriors.shape[0] == 70
    code, _, err = run(capsys, "suggest", "--labels", TINY_LABELS, "--docs", TINY_DOCS, "--no-adapt")
    assert code == 0 and "adapting" not in err and projects[-1].model.adaptation is None


def test_fine_tune_reaches_the_trainer(capsys, projects, tmp_path):
    fails(capsys, "train", "--labels", TINY_LABELS, "--docs", TINY_DOCS, "--out", tmp_path / "m", "--fine-tune", "on",
          where="", what="needs a transformer encoder", fix="sentence-transformers model")
    code, _, err = run(capsys, "train", "--labels", TINY_LABELS, "--docs", TINY_DOCS, "--out", tmp_path / "m",
                       "--fine-tune", "off")
    assert code == 0, err
    assert read_model(tmp_path / "m").config.train.fine_tune == "off"


def test_eval_json_is_what_evaluate_computes_on_the_same_rankings(capsys, tmp_path):
    code, out, _ = run(capsys, "eval", "--labels", TINY_LABELS, "--docs", TINY_DOCS, "--json", "-k", "3",
                       "--threshold", "0.2")
    assert code == 0
    printed = json.loads(out)
    labels = read_labels(TINY_LABELS)
    docs = list(read_documents(TINY_DOCS, label_set=labels))
    texts = [doc.text for doc in docs]
    config = Config.from_options()  # as the command line builds it
    ranking = Project(labels=labels, config=config).adapt(texts).rank(texts, 10)  # k or --annif-limit
    expected = evaluate(ranking.positions[:, :3], ranking.scores[:, :3], labels.matrix([d.labels for d in docs]),
                        threshold=0.2, ks=(1, 3))
    assert {key: value for key, value in printed.items() if key not in ("annif", "confidence", "decisions")} == json.loads(
        json.dumps(expected.to_dict()))
    assert printed["threshold"] == 0.2
    other = json.loads(run(capsys, "eval", "--labels", TINY_LABELS, "--docs", TINY_DOCS, "--json", "-k", "3",
                           "--threshold", "0.6")[1])
    assert other["threshold"] == 0.6 and other["metrics"] != printed["metrics"]  # F1 at the threshold given


def test_train_update_changes_the_saved_examples_and_rankings(capsys, tmp_path):
    model = tmp_path / "model"
    assert run(capsys, "train", "--labels", TINY_LABELS, "--docs", TINY_DOCS, "--out", model)[0] == 0
    before = read_model(model)
    refund = before.labels.index_of("billing/refunds")
    more = tmp_path / "more.jsonl"
    texts = ["refund please, I returned the blender", "where is my money back for the returned shoes"]
    more.write_text("".join(json.dumps({"id": f"m{i}", "text": t, "labels": ["billing/refunds"]}) + "\n"
                            for i, t in enumerate(texts)))
    code, _, err = run(capsys, "train", "--model", model, "--update", more)
    assert code == 0 and "2 documents folded" in err
    after = read_model(model)
    assert after.documents == before.documents + 2
    assert after.counts[refund] == before.counts[refund] + 2
    assert np.array_equal(np.delete(after.counts, refund), np.delete(before.counts, refund))
    old, new = before.without_adaptation().rank(texts, 3), after.without_adaptation().rank(texts, 3)
    assert not np.array_equal(old.scores, new.scores)
    refund_score = lambda r: r.scores[r.positions == refund]
    assert (refund_score(new) > refund_score(old)).all()


def test_training_keeps_the_document_ids_that_explanations_name(capsys, tmp_path):
    from test_supervised import IDS, LABELS, TEXTS  # enough examples per label for the nearest-examples scorer

    labels, docs, model = tmp_path / "labels.jsonl", tmp_path / "docs.jsonl", tmp_path / "model"
    labels.write_text("".join(json.dumps({"id": l.id, "name": l.name}) + "\n" for l in LABELS))
    docs.write_text("".join(json.dumps({"id": f"d{i}", "text": t, "labels": y}) + "\n"
                            for i, (t, y) in enumerate(zip(TEXTS, IDS))))
    assert run(capsys, "train", "--labels", labels, "--docs", docs, "--out", model)[0] == 0
    neighbours = read_model(model).scoring.scorers["neighbours"]
    assert neighbours.example_ids_ == [f"d{i}" for i in range(len(TEXTS))] and neighbours.snippets_[0] == TEXTS[0]


def test_train_update_of_a_zero_shot_folder_is_refused(capsys, tmp_path):
    fails(capsys, "train", "--model", tmp_path / "missing", "--update", TINY_DOCS, where=str(tmp_path / "missing"),
          what="no model here", fix="retrain")
