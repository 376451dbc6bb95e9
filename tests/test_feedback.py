"""The feedback store (schema, durability, history), the review queue and `train --feedback`."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest
from test_cli import TINY_DOCS, TINY_LABELS, fails, run

from taxonomist.errors import InputError, NotFoundError
from taxonomist.feedback import FeedbackStore, examples_from, review_queue
from taxonomist.feedback.queue import spread, uncertainty
from taxonomist.feedback.store import SCHEMA_VERSION, StoredSuggestion
from taxonomist.persist import read_model
from taxonomist.project import Project
from taxonomist.readers import read_labels


@pytest.fixture(autouse=True)
def _fake_encoder(hashing_encoder) -> None:
    """The hashing encoder for every test here (see conftest)."""


@pytest.fixture
def db(tmp_path):
    with FeedbackStore(tmp_path / "feedback.db") as store:
        yield store


def tiny_docs() -> list[dict]:
    with open(TINY_DOCS, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


# ---------------------------------------------------------------------------- schema
def test_a_new_store_is_versioned_wal_with_foreign_keys(db):
    connection = sqlite3.connect(db.path)
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert connection.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    ours = db._connection()
    assert ours.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert ours.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    with pytest.raises(sqlite3.IntegrityError):  # the schema's foreign keys are enforced
        ours.execute("INSERT INTO servings (document, served_at) VALUES (999, 'now')")
    connection.close()


def test_files_that_are_not_a_store_are_refused(tmp_path):
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(InputError, match="not a taxonomist feedback store") as info:
        FeedbackStore(junk)
    assert info.value.where == str(junk) and info.value.fix
    other = tmp_path / "other.db"
    connection = sqlite3.connect(other)
    connection.execute("CREATE TABLE t (x)")
    connection.commit()
    connection.close()
    with pytest.raises(InputError, match="not a taxonomist feedback store"):
        FeedbackStore(other)
    connection = sqlite3.connect(other)
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # someone else's file: untouched
    connection.close()
    with pytest.raises(InputError, match="no feedback store"):
        FeedbackStore(tmp_path / "missing.db", create=False)
    assert not (tmp_path / "missing.db").exists()
    with pytest.raises(InputError, match="folder"):
        FeedbackStore(tmp_path)


def test_a_store_that_cannot_be_created_says_so_not_that_it_is_of_another_kind(tmp_path):
    with pytest.raises(InputError) as error:
        FeedbackStore(tmp_path / "no such folder" / "taxonomist.db")
    assert "cannot be opened for writing" in str(error.value) and "not a taxonomist" not in str(error.value)


def test_a_newer_or_unknown_schema_is_refused(tmp_path):
    path = tmp_path / "feedback.db"
    FeedbackStore(path).close()
    for version, what in ((SCHEMA_VERSION + 1, "newer than this taxonomist"), (0, "unknown schema version")):
        connection = sqlite3.connect(path)
        connection.execute(f"PRAGMA user_version = {version}")
        connection.close()
        with pytest.raises(InputError, match=what):
            FeedbackStore(path)
    connection = sqlite3.connect(path)
    connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    connection.close()
    FeedbackStore(path).close()  # reopening a store of this version keeps it


# ---------------------------------------------------------------------------- writing and history
def test_a_document_is_recorded_once_per_project(db):
    first = db.record_document("p", "my parcel is late")
    assert db.record_document("p", "my parcel is late", ref="t9") == first
    assert db.document(first).ref == "t9"  # a ref given later fills the missing one
    assert db.record_document("q", "my parcel is late") != first
    assert db.projects() == ["p", "q"]


def test_undo_keeps_the_history_and_what_stood_before_stands_again(db):
    doc = db.record_document("p", "charged twice")
    accept = db.add_feedback(doc, "billing", "accept", who="ann")
    reject = db.add_feedback(doc, "billing", "reject", who="bob", note="not billing")
    assert [(v.label_id, v.verdict) for v in db.current_verdicts("p")] == [("billing", "reject")]
    undo = db.undo(reject, who="bob")
    assert [(v.verdict, v.feedback_id) for v in db.current_verdicts("p")] == [("accept", accept)]
    history = db.feedback_for(doc)
    assert [(f.verdict, f.who, f.withdraws, f.withdrawn_by) for f in history] == [
        ("accept", "ann", None, None), ("reject", "bob", None, undo), ("withdraw", "bob", reject, None)]
    assert history[1].note == "not billing"
    db.undo(accept, who="ann")
    assert db.current_verdicts("p") == [] and db.reviewed_documents("p") == set()
    assert len(db.feedback_for(doc)) == 4  # nothing a reviewer gave is lost
    with pytest.raises(InputError, match="already withdrawn"):
        db.undo(accept, who="ann")
    with pytest.raises(NotFoundError):
        db.undo(undo, who="ann")  # an undo is not a verdict to undo
    with pytest.raises(NotFoundError):
        db.undo(12345, who="ann")


def test_verdicts_resolve_per_document_and_label(db):
    a, b = db.record_document("p", "doc a"), db.record_document("p", "doc b")
    db.record_document("p", "doc c")
    db.add_feedback(a, "x", "accept", who="u")
    db.add_feedback(a, "y", "reject", who="u")
    db.add_feedback(a, "x", "reject", who="u")  # a later verdict replaces the earlier one
    db.add_feedback(b, "z", "add", who="u")
    db.add_feedback(db.record_document("other", "doc a"), "x", "accept", who="u")
    assert [(v.document, v.label_id, v.verdict) for v in db.current_verdicts("p")] == [
        (a, "x", "reject"), (a, "y", "reject"), (b, "z", "add")]
    assert db.reviewed_documents("p") == {a, b}
    assert db.stats("p") == {"documents": 3, "reviewed": 2, "feedback_rows": 4, "accepted": 0, "rejected": 2,
                             "added": 1}


def test_bad_feedback_is_refused(db):
    doc = db.record_document("p", "text")
    with pytest.raises(InputError, match="unknown verdict"):
        db.add_feedback(doc, "x", "maybe", who="u")
    with pytest.raises(InputError, match="who"):
        db.add_feedback(doc, "x", "accept", who="")
    with pytest.raises(NotFoundError, match="no document 99"):
        db.add_feedback(99, "x", "accept", who="u")
    with pytest.raises(NotFoundError):
        db.record_suggestions(99, [("x", 0.5, None)], model_checksum=None)
    assert db.feedback_for(doc) == []  # a failed write leaves nothing behind


def test_documents_are_read_by_id_in_any_number(db):
    ids = [db.record_document("p", f"text {i}") for i in range(620)]  # more than one chunk of bound parameters
    assert db.document_ids("p") == ids
    assert [d.id for d in db.documents("p", ids[::-1])] == ids
    assert [d.text for d in db.documents("p", [ids[3], ids[600], 10_000])] == ["text 3", "text 600"]
    assert db.documents("q", ids) == []


def test_suggestions_served_are_kept_with_the_model_checksum(db):
    doc = db.record_document("p", "text")
    db.record_suggestions(doc, [("x", 0.9, 0.8), ("y", 0.1, 0.05)], model_checksum="old")
    db.record_suggestions(doc, [("y", 0.6, None)], model_checksum="new")
    assert db.latest_suggestions("p") == {doc: ("new", [StoredSuggestion("y", 0.6, None, 1)])}


def test_threads_write_at_once_without_losing_a_row(db):
    docs = [db.record_document("p", f"document {i}") for i in range(4)]
    errors: list[Exception] = []

    def post(worker: int) -> None:
        try:
            for i in range(25):
                db.add_feedback(docs[i % 4], f"label-{worker}-{i}", "accept", who=f"w{worker}")
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=post, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and db.stats("p")["feedback_rows"] == 200


CHILD = textwrap.dedent("""
    import sys, time
    from taxonomist.feedback import FeedbackStore
    store = FeedbackStore(sys.argv[1])
    doc = store.record_document("p", "a document to review")
    for i in range(200):
        row = store.add_feedback(doc, f"label-{i}", "accept", who="child")
        print(f"ack {i} {row}", flush=True)
        time.sleep(0.003)
""")


def test_every_acknowledged_write_survives_kill_9(tmp_path):
    path = tmp_path / "feedback.db"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "HF_HUB_OFFLINE": "1"})
    acked: dict[int, int] = {}
    try:
        for line in child.stdout:
            _, i, row = line.split()
            acked[int(i)] = int(row)
            if len(acked) == 80:
                os.kill(child.pid, signal.SIGKILL)
                break
    finally:
        child.stdout.close()
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL and len(acked) == 80
    connection = sqlite3.connect(path)
    assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    connection.close()
    with FeedbackStore(path) as store:
        rows = {f.id: f.label_id for f in store.feedback_for(store.record_document("p", "a document to review"))}
    assert all(rows.get(row) == f"label-{i}" for i, row in acked.items())
    assert 80 <= len(rows) < 200  # killed midway: at most the one in flight beyond what was acknowledged


# ---------------------------------------------------------------------------- review queue
@pytest.fixture
def saved_project(tmp_path):
    project = Project("help", labels=read_labels(TINY_LABELS), adapt=False)
    project.save(tmp_path / "model")
    return project


def _served(db, project, text, scores, checksum="current"):
    doc = db.record_document(project.project_id, text)
    db.record_suggestions(doc, [(f"l{i}", s, None) for i, s in enumerate(scores)],
                          model_checksum=project.checksum() if checksum == "current" else checksum)
    return doc


def test_uncertainty_is_one_minus_the_margin_of_the_best_two():
    s = lambda *v: [StoredSuggestion(f"l{i}", x, None, i + 1) for i, x in enumerate(v)]
    assert uncertainty(s(0.9, 0.1)) == pytest.approx(0.2)
    assert uncertainty(s(0.5, 0.5)) == 1.0 and uncertainty([]) == 1.0
    assert uncertainty(s(0.7)) == pytest.approx(0.3)
    with_p = [StoredSuggestion("a", 0.9, 0.5, 1), StoredSuggestion("b", 0.1, 0.45, 2)]
    assert uncertainty(with_p) == pytest.approx(0.95)  # probabilities where there are some


def test_the_queue_puts_the_most_uncertain_first_and_skips_reviewed(db, saved_project):
    sure = _served(db, saved_project, "the courier lost my parcel", [0.9, 0.05])
    unsure = _served(db, saved_project, "I want a refund for the invoice", [0.4, 0.4])
    middle = _served(db, saved_project, "the app crashes at startup", [0.6, 0.3])
    queue = review_queue(db, saved_project, 3)
    assert [item.document.id for item in queue] == [unsure, middle, sure]
    assert all(item.stored for item in queue) and queue[0].uncertainty == 1.0
    db.add_feedback(unsure, "billing/refunds", "accept", who="u")
    assert [item.document.id for item in review_queue(db, saved_project, 3)] == [middle, sure]
    assert [item.document.id for item in review_queue(db, saved_project, 1)] == [middle]


def test_documents_served_by_another_model_or_never_are_ranked_now(db, saved_project):
    stale = _served(db, saved_project, "the courier lost my parcel", [0.5, 0.5], checksum="an older model")
    new = db.record_document(saved_project.project_id, "charged twice for one order")
    queue = review_queue(db, saved_project, 5)
    assert {item.document.id for item in queue} == {stale, new}
    assert not any(item.stored for item in queue)
    labels = set(saved_project.model.labels.ids)
    assert all(item.suggestions and {s.label_id for s in item.suggestions} <= labels for item in queue)


def test_the_queue_ranks_at_most_max_ranked_documents_per_call(db, saved_project):
    first, second = (db.record_document(saved_project.project_id, t) for t in ("parcel lost", "refund please"))
    assert [item.document.id for item in review_queue(db, saved_project, 5, max_ranked=1)] == [first]


def test_a_page_is_spread_over_the_corpus(db, saved_project):
    twins = [_served(db, saved_project, f"printer paper jam tray {w}", [0.5, 0.5]) for w in ("one", "two")]
    other = _served(db, saved_project, "refund my money for the broken headphones", [0.6, 0.4])
    page = review_queue(db, saved_project, 2)
    assert [item.document.id for item in page] == [twins[0], other]  # not both near-duplicates


def test_spread_picks_far_rows_weighted_by_uncertainty():
    vectors = np.array([[1, 0], [0.999, 0.045], [0, 1]], dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    assert spread(vectors, np.array([1.0, 0.99, 0.5]), 2) == [0, 2]
    assert spread(vectors, np.array([1.0, 0.99, 0.5]), 5) == [0, 2, 1]


# ---------------------------------------------------------------------------- folding feedback into a model
def test_feedback_becomes_examples_and_a_rejection_is_never_a_positive(db):
    labels = read_labels(TINY_LABELS)
    a = db.record_document("p", "charged twice")
    b = db.record_document("p", "parcel late")
    db.add_feedback(a, "billing", "accept", who="u")
    db.add_feedback(a, "shipping", "accept", who="u")
    db.add_feedback(a, "shipping", "reject", who="u")
    db.add_feedback(b, "shipping", "reject", who="u")
    examples = examples_from(db, "p", labels)
    assert examples.texts == ["charged twice"] and examples.label_ids == [["billing"]]
    assert sorted(label for _, label in examples.rejections) == ["shipping", "shipping"]
    assert examples.accepted == 1 and examples.added == 0 and examples.rejected_only == 1
    db.add_feedback(b, "no/such/label", "add", who="u")
    with pytest.raises(InputError, match=rf"document {b}: add 'no/such/label'"):
        examples_from(db, "p", labels)
    with pytest.raises(InputError, match="no feedback for project 'q'"):
        examples_from(db, "q", labels)


def _review_tiny(path, n=12, project="help"):
    """A store where a reviewer accepted the gold labels of the first n tiny documents, rejected a wrong one
    on each, and added one label to the first."""
    with FeedbackStore(path) as store:
        for i, doc in enumerate(tiny_docs()[:n]):
            doc_id = store.record_document(project, doc["text"], ref=doc["id"])
            for label in doc["labels"]:
                store.add_feedback(doc_id, label, "accept", who="reviewer")
            wrong = "shipping" if not doc["labels"][0].startswith("shipping") else "billing"
            store.add_feedback(doc_id, wrong, "reject", who="reviewer")
            if i == 0:
                store.add_feedback(doc_id, "billing/refunds", "add", who="reviewer")


@pytest.fixture
def trained(tmp_path, capsys):
    path = tmp_path / "model"
    code, _, err = run(capsys, "train", "--labels", TINY_LABELS, "--docs", TINY_DOCS, "--out", path)
    assert code == 0, err
    return path


def test_train_feedback_folds_reviews_into_a_new_model(trained, tmp_path, capsys):
    store = tmp_path / "feedback.db"
    _review_tiny(store)
    before = (trained / "manifest.json").read_bytes()
    new = tmp_path / "new"
    code, _, err = run(capsys, "train", "--model", trained, "--feedback", store, "--out", new)
    assert code == 0, err
    assert "folded 12 reviewed documents of project 'help'" in err
    accepted = sum(len(d["labels"]) for d in tiny_docs()[:12])
    assert f"{accepted} accepted and 1 added labels" in err
    assert "12 rejected labels kept with the model (never suggested again" in err
    assert (trained / "manifest.json").read_bytes() == before  # the model it started from is untouched
    model = read_model(new)
    assert model.documents == 54 + 12 and len(model.rejections) == 12
    assert all(len(sha) == 64 for sha, _ in model.rejections)
    again = tmp_path / "zero"  # without a trained model: trained on the feedback from the label set
    code, _, err = run(capsys, "train", "--labels", TINY_LABELS, "--feedback", store, "--out", again)
    assert code == 0 and "trained on 12 reviewed documents" in err, err
    assert read_model(again).documents == 12 and len(read_model(again).rejections) == 12


def test_folding_a_store_again_learns_only_what_is_new_and_refuses_changed_labels(trained, tmp_path, capsys):
    store = tmp_path / "feedback.db"
    _review_tiny(store, n=6)
    first, second, third = tmp_path / "first", tmp_path / "second", tmp_path / "third"
    assert run(capsys, "train", "--model", trained, "--feedback", store, "--out", first)[0] == 0
    assert read_model(first).documents == 54 + 6 and len(read_model(first).folded) == 6
    fails(capsys, "train", "--model", first, "--feedback", store, "--out", second, where=str(store),
          what="nothing new to fold: the model already learnt all 6", fix="review more")
    _review_tiny(store, n=9)  # three more documents reviewed (the first six again: the same standing verdicts)
    code, _, err = run(capsys, "train", "--model", first, "--feedback", store, "--out", second)
    assert code == 0 and "folded 3 reviewed documents" in err and "6 documents left out, already folded" in err
    assert read_model(second).documents == 54 + 9 and len(read_model(second).folded) == 9
    with FeedbackStore(store) as db:  # a folded document gets another label: its labels are not those learnt
        doc = db.document_ids("help")[1]
        assert "billing/refunds" not in tiny_docs()[1]["labels"]
        db.add_feedback(doc, "billing/refunds", "add", who="reviewer")
    fails(capsys, "train", "--model", second, "--feedback", store, "--out", third, where=str(store),
          what="1 documents this model learnt from the store have other labels now", fix="first folded into")
    code, _, err = run(capsys, "train", "--model", trained, "--feedback", store, "--out", third)  # as advised
    assert code == 0 and "left out" not in err, err


def test_a_rejected_label_is_never_suggested_for_its_document_again(trained, tmp_path, capsys):
    text = tiny_docs()[0]["text"]
    model = read_model(trained)
    first = model.labels.ids[int(model.candidates([text]).positions[0, 0])]
    store = tmp_path / "feedback.db"
    with FeedbackStore(store) as db:
        doc = db.record_document("help", text)
        db.add_feedback(doc, first, "reject", who="reviewer")
        db.add_feedback(doc, tiny_docs()[0]["labels"][0] if tiny_docs()[0]["labels"][0] != first
                        else tiny_docs()[1]["labels"][0], "add", who="reviewer")
    new = tmp_path / "new"
    assert run(capsys, "train", "--model", trained, "--feedback", store, "--out", new)[0] == 0
    folded = read_model(new)  # as loaded from its folder: the rejection is saved with it
    ranked = {folded.labels.ids[int(p)] for p in folded.candidates([text]).positions[0] if p >= 0}
    assert ranked and first not in ranked
    assert first not in {s.label_id for s in folded.suggest([text], k=len(folded.labels))[0]}
    other = text + " (another text)"  # any other text still gets the label
    assert first in {folded.labels.ids[int(p)] for p in folded.candidates([other]).positions[0] if p >= 0}


def test_train_feedback_says_what_is_wrong_with_its_input(trained, tmp_path, capsys):
    junk = tmp_path / "junk.db"
    junk.write_text("not sqlite " * 200)
    out = tmp_path / "new"
    fails(capsys, "train", "--model", trained, "--feedback", junk, "--out", out, where=str(junk),
          what="not a taxonomist feedback store", fix="serve --store")
    fails(capsys, "train", "--model", trained, "--feedback", tmp_path / "none.db", "--out", out,
          where="none.db", what="no feedback store", fix="--store")
    store = tmp_path / "feedback.db"
    _review_tiny(store, n=2)
    _review_tiny(store, n=1, project="other")
    fails(capsys, "train", "--model", trained, "--feedback", store, "--out", out, where=str(store),
          what="2 projects", fix="'help'")
    fails(capsys, "train", "--model", trained, "--feedback", store, "--out", out, "--project", "nope",
          where=str(store), what="no project 'nope'", fix="'other'")
    with FeedbackStore(store) as db:
        doc = db.record_document("help", "a new text", ref="n1")
        db.add_feedback(doc, "made/up", "add", who="u")
    fails(capsys, "train", "--model", trained, "--feedback", store, "--out", out, "--project", "help",
          where=str(store), what=f"document {doc} (n1): add 'made/up'", fix="labels add")
    with FeedbackStore(store) as db:
        empty = db.record_document("empty", "nothing reviewed")
        db.add_feedback(db.record_document("rejecting", "all wrong"), "billing", "reject", who="u")
    fails(capsys, "train", "--model", trained, "--feedback", store, "--out", out, "--project", "rejecting",
          where=str(store), what="accepts or adds no label", fix="accept or add labels")
    fails(capsys, "train", "--model", trained, "--feedback", store, "--out", out, "--project", "empty",
          where=str(store), what="no feedback for project 'empty'", fix="review queue")
    fails(capsys, "train", "--model", trained, "--feedback", store, "--project", "help", where="",
          what="new model folder", fix="--out")
    assert not out.exists() and empty
