"""The server with a feedback store, over real HTTP: what suggest (ours and Annif's) records, Annif's learn as add
feedback, our feedback / undo / history / review queue / progress routes and their bad input, and `taxonomist
serve` killed with SIGKILL while feedback is posted: every acknowledged row survives."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading

import httpx
import pytest
from fastapi.testclient import TestClient
from live import free_port, live, wait_ready
from test_serve import FRUIT, LIMITS, TREE, from_folder, problem_of, trained_folders, zero_shot
from test_supervised import TEXTS

from taxonomist.feedback import FeedbackStore
from taxonomist.serve.annif import LEARN_WHO
from taxonomist.serve.app import create_app
from taxonomist.serve.projects import Projects

os.environ["HF_HUB_OFFLINE"] = "1"
TEXTS_TO_REVIEW = ["an apple and a banana", "football and tennis on sunday", "a guitar and a drum",
                   "carrots and apples", "tennis racket strings", "a song on the guitar", "banana bread"]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(base URL, store, projects): zs (zero-shot tree), tr (trained, saved: it has a checksum), learner (a copy of
    tr that allows learning)."""
    trained, copies = trained_folders(tmp_path_factory, "learner")
    projects = Projects([zero_shot("zs"), from_folder("tr", trained), from_folder("learner", copies["learner"], True)])
    store = FeedbackStore(tmp_path_factory.mktemp("store") / "taxonomist.db")
    with live(create_app(projects, LIMITS, store=store)) as base:
        yield base, store, projects
    store.close()


@pytest.fixture(scope="module")
def http(served):
    with httpx.Client(base_url=served[0], timeout=30) as client:
        yield client


def submit(http: httpx.Client, project: str, texts: list[str]) -> list[int]:
    answer = http.post(f"/api/projects/{project}/documents",
                       json={"documents": [{"id": f"ref-{i}", "text": t} for i, t in enumerate(texts)]})
    assert answer.status_code == 201, answer.text
    return [d["document"] for d in answer.json()["documents"]]


def test_suggestions_served_are_recorded_with_the_model_checksum(served, http):
    _, store, projects = served
    checksum = projects["tr"].project.checksum()
    assert checksum is not None
    ours = http.post("/api/projects/tr/suggest", json={"documents": [{"id": "mine", "text": TEXTS[0]}], "k": 3})
    result = ours.json()["results"][0]
    stored = store.latest_suggestions("tr")[result["document"]]
    assert stored[0] == checksum and [s.label_id for s in stored[1]] == [s["id"] for s in result["suggestions"]]
    assert store.document(result["document"]).ref == "mine"

    batch = http.post("/v1/projects/tr/suggest-batch?limit=2",
                      json={"documents": [{"document_id": "b1", "text": TEXTS[1]}]}).json()
    document = next(d for d in store.documents("tr") if d.ref == "b1")
    stored = store.latest_suggestions("tr")[document.id]
    assert [(s.label_id, round(s.score, 5)) for s in stored[1]] == [
        (r["uri"], round(r["score"], 5)) for r in batch[0]["results"]]
    assert all(s.probability == s.score for s in stored[1])  # tr is calibrated: Annif's score is the probability

    before = len(store.documents("zs"))
    http.post("/v1/projects/zs/suggest", data={"text": "a new text about football"})
    assert len(store.documents("zs")) == before + 1
    assert store.latest_suggestions("zs")[store.documents("zs")[-1].id][0] is None  # zero-shot: no checksum


def test_feedback_undo_and_a_documents_history(http):
    [document] = submit(http, "zs", [FRUIT])
    accepted = http.post("/api/projects/zs/feedback",
                         json={"document": document, "label": "banana", "verdict": "accept", "who": "ann"})
    assert accepted.status_code == 201, accepted.text
    row = accepted.json()
    assert row["verdict"] == "accept" and row["who"] == "ann" and row["at"].endswith("Z")
    history = http.get(f"/api/projects/zs/documents/{document}").json()
    assert history["text"] == FRUIT and history["ref"] == "ref-0" and history["suggestions"]
    assert any(s["path"] for s in history["suggestions"])
    assert history["standing"] == [{"label": "banana", "verdict": "accept", "feedback_id": row["id"]}]

    undone = http.post(f"/api/projects/zs/feedback/{row['id']}/undo", json={"who": "ann"})
    assert undone.status_code == 201 and undone.json()["withdraws"] == row["id"]
    history = http.get(f"/api/projects/zs/documents/{document}").json()
    assert [f["verdict"] for f in history["feedback"]] == ["accept", "withdraw"]
    assert history["feedback"][0]["withdrawn_by"] == undone.json()["id"] and history["standing"] == []
    assert problem_of(http.post(f"/api/projects/zs/feedback/{row['id']}/undo", json={"who": "ann"}), 409)
    assert "undo itself" in problem_of(http.post(f"/api/projects/zs/feedback/{undone.json()['id']}/undo",
                                                 json={"who": "ann"}), 400)["detail"]


def test_bad_feedback_is_a_4xx_that_says_what(served, http):
    [document] = submit(http, "zs", ["drums all night"])
    good = {"document": document, "label": "drum", "verdict": "reject", "who": "bo"}

    def post(**change):
        return http.post("/api/projects/zs/feedback", json=good | change)

    assert "document 999999" in problem_of(post(document=999999), 404)["detail"]
    assert problem_of(http.post("/api/projects/tr/feedback", json=good | {"label": "b"}), 404)  # zs's document
    assert "verdict" in problem_of(post(verdict="maybe"), 400)["detail"]
    assert "label 'nope'" in problem_of(post(label="nope"), 400)["detail"]
    for who in ("", "   "):
        assert "who" in problem_of(post(who=who), 400)["detail"]
    assert problem_of(post(document=str(document)), 400)  # JSON types as the schema says
    assert problem_of(post(document=2**60), 400)  # beyond the ids a JSON number holds exactly
    assert post(document=float(document)).status_code == 201  # JSON Schema's integer includes 5.0
    assert problem_of(http.post("/api/projects/zs/feedback/424242/undo", json={"who": "bo"}), 404)
    assert problem_of(http.get("/api/projects/zs/documents/0"), 400)
    assert problem_of(http.get("/api/projects/nope/review"), 404)["detail"] == "Project 'nope' not found"
    assert problem_of(http.get("/api/projects/zs/review?n=0"), 400)
    zs_feedback = post().json()["id"]
    assert problem_of(http.post(f"/api/projects/tr/feedback/{zs_feedback}/undo", json={"who": "bo"}), 404)


def test_without_a_store_the_review_routes_say_so():
    client = TestClient(create_app(Projects([zero_shot("zs")]), LIMITS, load_on_start=False))
    for response in (client.get("/api/projects/zs/review"), client.get("/api/projects/zs/review/progress"),
                     client.post("/api/projects/zs/feedback", json={"document": 1, "label": "drum",
                                                                   "verdict": "add", "who": "x"})):
        assert "--store" in problem_of(response, 404)["detail"]
    assert client.get("/api/projects").json()["store"] is False
    assert client.post("/api/projects/zs/suggest", json={"text": FRUIT}).json()["results"][0]["document"] is None


def test_the_review_queue_skips_reviewed_documents_and_progress_counts(served, http):
    _, store, _ = served
    ids = submit(http, "zs", TEXTS_TO_REVIEW)
    page = http.get("/api/projects/zs/review?n=3").json()
    assert len(page["items"]) == 3
    assert [i["uncertainty"] for i in page["items"]] == sorted((i["uncertainty"] for i in page["items"]), reverse=True)
    first = page["items"][0]
    assert first["text"] and first["suggestions"] and all("path" in s for s in first["suggestions"])
    before = page["progress"]
    http.post("/api/projects/zs/feedback", json={"document": first["document"], "label": "tennis",
                                                 "verdict": "add", "who": "cy"})
    again = http.get("/api/projects/zs/review?n=100").json()
    assert first["document"] not in {i["document"] for i in again["items"]}
    assert set(ids) - {first["document"]} <= {i["document"] for i in again["items"]} | store.reviewed_documents("zs")
    progress = http.get("/api/projects/zs/review/progress").json()
    assert progress["reviewed"] == before["reviewed"] + 1 and progress["added"] == before["added"] + 1
    assert progress["remaining"] == progress["documents"] - progress["reviewed"]
    assert len(http.get("/api/projects/zs/review?n=100000").json()["items"]) <= 100  # clamped


def test_annif_learn_is_kept_as_add_feedback_only_when_taken(served, http):
    _, store, _ = served
    body = [{"text": "a comet seen through the telescope", "subjects": [{"uri": "d"}, {"uri": "not-a-label"}]}]
    assert http.post("/v1/projects/learner/learn", json=body).status_code == 204
    [verdict] = store.current_verdicts("learner")
    assert (verdict.label_id, verdict.verdict, verdict.who) == ("d", "add", LEARN_WHO)
    assert store.document(verdict.document).text == body[0]["text"]
    before = store.stats("tr")["feedback_rows"]
    problem_of(http.post("/v1/projects/tr/learn", json=body), 403)
    assert store.stats("tr")["feedback_rows"] == before


# ---------------------------------------------------------------------------- kill -9
POSTS = 200
KILL_AFTER = 60  # acknowledged rows before the SIGKILL


def test_every_acknowledged_feedback_row_survives_kill_9(tmp_path):
    """`taxonomist serve` as a child process; four clients post 200 verdicts; SIGKILL once 60 are acknowledged;
    every acknowledged row is in the reopened store, which passes PRAGMA integrity_check."""
    labels = tmp_path / "labels.jsonl"
    labels.write_text("".join(json.dumps({"id": label.id, "name": label.name, "parents": list(label.parents)}) + "\n"
                              for label in TREE))
    db, port = tmp_path / "taxonomist.db", free_port()
    child = subprocess.Popen([sys.executable, "-m", "taxonomist.cli", "serve", "--project", f"t=labels:{labels}",
                              "--encoder", "static", "--store", str(db), "--port", str(port)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tmp_path,
                             env=os.environ | {"HF_HUB_OFFLINE": "1"})
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, 120)
        [document] = [d["document"] for d in httpx.post(f"{base}/api/projects/t/documents",
                                                          json={"documents": [{"text": FRUIT}]}).json()["documents"]]
        acknowledged: list[int] = []
        lock, enough = threading.Lock(), threading.Event()

        def client(start: int) -> None:
            with httpx.Client(base_url=base, timeout=10) as http:
                for i in range(start, POSTS, 4):
                    try:
                        answer = http.post("/api/projects/t/feedback", json={
                            "document": document, "label": TREE.ids[i % len(TREE)],
                            "verdict": ("accept", "reject", "add")[i % 3], "who": f"client {start}"})
                    except httpx.TransportError:
                        return  # the server is gone: this row was never acknowledged
                    if 200 <= answer.status_code < 300:
                        with lock:
                            acknowledged.append(answer.json()["id"])
                            if len(acknowledged) >= KILL_AFTER:
                                enough.set()

        threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
        for thread in threads:
            thread.start()
        assert enough.wait(60), "the server acknowledged too few rows"
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        for thread in threads:
            thread.join(30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
    assert KILL_AFTER <= len(acknowledged) < POSTS, "the kill came after every post"
    with sqlite3.connect(db) as raw:
        assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    with FeedbackStore(db) as store:
        kept = {row.id for row in store.feedback_for(document)}
    assert set(acknowledged) <= kept
