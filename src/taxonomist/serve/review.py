"""Reviewers' routes (/api, in the OpenAPI schema), over the server's feedback store: documents submitted for
review, feedback (accept / reject / add, with who), undo, a document's history, the review queue and progress.

Every route needs the store: a server started without one answers 404 with a detail that says so. A document or
feedback row of another project is as unknown as one that does not exist (404), so ids cannot leak across."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from ..errors import NotFoundError
from ..feedback import Document, Feedback, FeedbackStore, StoredSuggestion, review_queue
from ..feedback.store import WITHDRAW
from ..labels import LabelSet
from .api import DocumentIn, JsonInt, Step, check_documents, path_of, problems
from .limits import Limits
from .problems import Problem, bad_request
from .projects import Projects, ServedProject
from .recording import record

ROW_ID = 2**53 - 1  # the largest id a JSON number (and JavaScript) holds exactly; SQLite's row ids stay below it
MAX_QUEUE = 100  # documents per review page
SUBMIT_K = 10  # suggestions recorded per submitted document


# ---------------------------------------------------------------------------- schema
class DocumentsIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    documents: list[DocumentIn] = Field(description="texts to review; `id` is kept as the document's ref")
    k: JsonInt = Field(SUBMIT_K, ge=1, description="suggestions recorded per document (shown in the review queue)")


class SubmittedOut(BaseModel):
    document: int = Field(description="the document's id in the feedback store")
    ref: str | None


class SubmitOut(BaseModel):
    project_id: str
    documents: list[SubmittedOut]


class FeedbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    document: JsonInt = Field(ge=1, le=ROW_ID, description="the document's id in the feedback store")
    label: str = Field(min_length=1, max_length=2000, description="a label id of the project")
    verdict: Literal["accept", "reject", "add"] = Field(description="accept or reject a suggestion, or add a label")
    who: str = Field(min_length=1, max_length=200, pattern=r"\S", description="the reviewer")
    note: str | None = Field(None, max_length=10_000)


class UndoIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    who: str = Field(min_length=1, max_length=200, pattern=r"\S", description="the reviewer")
    note: str | None = Field(None, max_length=10_000)


class FeedbackOut(BaseModel):
    id: int = Field(description="the row's id (give it to undo)")
    document: int
    label: str
    verdict: Literal["accept", "reject", "add", "withdraw"] = Field(description="'withdraw' for an undo")
    who: str
    at: str = Field(description="when, ISO 8601 in UTC")
    note: str | None
    withdraws: int | None = Field(description="an undo: the verdict it withdrew")
    withdrawn_by: int | None = Field(description="a verdict: the undo that withdrew it")


class ReviewSuggestionOut(BaseModel):
    id: str
    name: str
    score: float
    probability: float | None
    rank: int
    path: list[Step] = Field(description="the label's ancestors, root first (empty for a label no longer known)")


class StandingOut(BaseModel):
    label: str
    verdict: Literal["accept", "reject", "add"]
    feedback_id: int


class DocumentReviewOut(BaseModel):
    document: int
    ref: str | None
    text: str
    first_seen: str
    suggestions: list[ReviewSuggestionOut] = Field(description="the latest suggestions served for it")
    feedback: list[FeedbackOut] = Field(description="its whole history, oldest first, undos included")
    standing: list[StandingOut] = Field(description="per label, the verdict that stands")


class ReviewItemOut(BaseModel):
    document: int
    ref: str | None
    text: str
    uncertainty: float = Field(description="1 − the margin between the best two suggestions")
    suggestions: list[ReviewSuggestionOut]


class ProgressOut(BaseModel):
    documents: int = Field(description="documents in the store for this project")
    reviewed: int = Field(description="documents with at least one verdict standing")
    remaining: int
    accepted: int
    rejected: int
    added: int
    feedback_rows: int = Field(description="every feedback row ever given, undos included")


class ReviewOut(BaseModel):
    project_id: str
    items: list[ReviewItemOut] = Field(description="most uncertain first, spread over the corpus; reviewed "
                                       "documents skipped")
    progress: ProgressOut


# ---------------------------------------------------------------------------- work
def suggestions_out(labels: LabelSet, stored: list[StoredSuggestion] | tuple[StoredSuggestion, ...]
                    ) -> list[ReviewSuggestionOut]:
    out = []
    for s in stored:
        known = s.label_id in labels
        position = labels.index_of(s.label_id) if known else -1
        out.append(ReviewSuggestionOut(id=s.label_id, name=labels.names[position] if known else s.label_id,
                                       score=s.score, probability=s.probability, rank=s.rank,
                                       path=path_of(labels, position) if known else []))
    return out


def feedback_out(row: Feedback) -> FeedbackOut:
    return FeedbackOut(id=row.id, document=row.document, label=row.label_id, verdict=row.verdict, who=row.who,
                       at=row.at, note=row.note, withdraws=row.withdraws, withdrawn_by=row.withdrawn_by)


def progress(store: FeedbackStore, project_id: str) -> ProgressOut:
    stats = store.stats(project_id)
    return ProgressOut(**stats, remaining=stats["documents"] - stats["reviewed"])


class Review:
    """The routes' work, each call checking that the store is there and the ids belong to the project."""

    def __init__(self, projects: Projects, limits: Limits, store: FeedbackStore | None) -> None:
        self.projects, self.limits, self._store = projects, limits, store

    def store(self) -> FeedbackStore:
        if self._store is None:
            raise Problem(404, "No feedback store", "this server keeps no feedback store, so it takes no feedback "
                          "and has no review queue; start it with --store FILE")
        return self._store

    def project(self, project_id: str) -> tuple[ServedProject, FeedbackStore]:
        served = self.projects.find(project_id)
        return served, self.store()

    def document(self, store: FeedbackStore, project_id: str, document: int) -> Document:
        found = store.documents(project_id, [document])
        if not found:
            raise Problem(404, "Document not found", f"document {document} is not in project '{project_id}''s "
                          "feedback store (ids come from suggest, the review queue or POST documents)")
        return found[0]

    def submit(self, project_id: str, request: DocumentsIn) -> SubmitOut:
        served, store = self.project(project_id)
        check_documents(request.documents, self.limits)
        texts = [d.text for d in request.documents]
        rows = served.model.suggest(texts, min(request.k, self.limits.max_results)) if texts else []
        ids = record(store, served, texts, [d.id for d in request.documents],
                     [[(s.label_id, s.score, s.probability) for s in row] for row in rows]) or []
        return SubmitOut(project_id=project_id, documents=[SubmittedOut(document=i, ref=d.id)
                                                           for i, d in zip(ids, request.documents)])

    def give(self, project_id: str, request: FeedbackIn) -> FeedbackOut:
        served, store = self.project(project_id)
        self.document(store, project_id, request.document)
        if request.label not in served.model.labels:
            raise bad_request(f"label '{request.label}' is not in project '{project_id}''s label set (search it "
                              f"with GET /api/projects/{project_id}/labels?q=...)")
        row = store.add_feedback(request.document, request.label, request.verdict, who=request.who,
                                 note=request.note)
        return feedback_out(store.feedback_entry(row))

    def undo(self, project_id: str, feedback_id: int, request: UndoIn) -> FeedbackOut:
        _, store = self.project(project_id)
        entry = self.entry(store, project_id, feedback_id)
        if entry.verdict == WITHDRAW:
            raise bad_request(f"feedback {feedback_id} is an undo itself; give the id of the verdict to undo")
        if entry.withdrawn_by is not None:
            raise Problem(409, "Already withdrawn", f"verdict {feedback_id} was already withdrawn (by "
                          f"{entry.withdrawn_by}); give the verdict again to restore it")
        return feedback_out(store.feedback_entry(store.undo(feedback_id, who=request.who, note=request.note)))

    def entry(self, store: FeedbackStore, project_id: str, feedback_id: int) -> Feedback:
        missing = Problem(404, "Feedback not found", f"no feedback {feedback_id} in project '{project_id}'")
        try:
            entry = store.feedback_entry(feedback_id)
        except NotFoundError:
            raise missing from None
        if not store.documents(project_id, [entry.document]):
            raise missing
        return entry

    def history(self, project_id: str, document: int) -> DocumentReviewOut:
        served, store = self.project(project_id)
        found = self.document(store, project_id, document)
        latest = store.latest_suggestions(project_id).get(document, (None, []))[1]
        standing = [v for v in store.current_verdicts(project_id) if v.document == document]
        return DocumentReviewOut(document=found.id, ref=found.ref, text=found.text, first_seen=found.first_seen,
                                 suggestions=suggestions_out(served.model.labels, latest),
                                 feedback=[feedback_out(row) for row in store.feedback_for(document)],
                                 standing=[StandingOut(label=v.label_id, verdict=v.verdict, feedback_id=v.feedback_id)
                                           for v in standing])

    def queue(self, project_id: str, n: int) -> ReviewOut:
        served, store = self.project(project_id)
        items = review_queue(store, served.project, min(n, MAX_QUEUE))
        fresh = [item for item in items if not item.stored]
        if fresh:  # ranked just now: kept, so that the next page reads them instead of ranking again
            record(store, served, [item.document.text for item in fresh], [item.document.ref for item in fresh],
                   [[(s.label_id, s.score, s.probability) for s in item.suggestions] for item in fresh])
        labels = served.model.labels
        return ReviewOut(project_id=project_id, progress=progress(store, project_id), items=[
            ReviewItemOut(document=item.document.id, ref=item.document.ref, text=item.document.text,
                          uncertainty=item.uncertainty, suggestions=suggestions_out(labels, item.suggestions))
            for item in items])

    def progress(self, project_id: str) -> ProgressOut:
        _, store = self.project(project_id)
        return progress(store, project_id)


def router(projects: Projects, limits: Limits, store: FeedbackStore | None) -> APIRouter:
    api = APIRouter(prefix="/api/projects/{project_id}", tags=["review"])
    review = Review(projects, limits, store)

    @api.post("/documents", status_code=201, response_model=SubmitOut, responses=problems(400, 404, 413, 503))
    def submit_route(project_id: str, request: DocumentsIn) -> SubmitOut:
        """Documents for people to review: recorded with the model's suggestions, they join the review queue."""
        return review.submit(project_id, request)

    @api.get("/documents/{document}", response_model=DocumentReviewOut, responses=problems(400, 404, 503))
    def document_route(project_id: str, document: int = Path(ge=1, le=ROW_ID)) -> DocumentReviewOut:
        """A document of the store: its text, latest suggestions, feedback history and standing verdicts."""
        return review.history(project_id, document)

    @api.post("/feedback", status_code=201, response_model=FeedbackOut, responses=problems(400, 404, 503))
    def feedback_route(project_id: str, request: FeedbackIn) -> FeedbackOut:
        """A reviewer's verdict on one label of a document: accept or reject a suggestion, or add a label."""
        return review.give(project_id, request)

    @api.post("/feedback/{feedback_id}/undo", status_code=201, response_model=FeedbackOut,
              responses=problems(400, 404, 409, 503))
    def undo_route(project_id: str, request: UndoIn, feedback_id: int = Path(ge=1, le=ROW_ID)) -> FeedbackOut:
        """Withdraw a verdict (the history keeps both rows); what stood before it stands again."""
        return review.undo(project_id, feedback_id, request)

    @api.get("/review", response_model=ReviewOut, responses=problems(400, 404, 503))
    def queue_route(project_id: str, n: int = Query(10, ge=1, description=f"documents wanted; at most "
                                                                            f"{MAX_QUEUE}")) -> ReviewOut:
        """The next documents to review, most uncertain first and spread over the corpus, with their suggestions
        and paths; documents with a verdict standing are skipped."""
        return review.queue(project_id, n)

    @api.get("/review/progress", response_model=ProgressOut, responses=problems(404))
    def progress_route(project_id: str) -> ProgressOut:
        """How far review has come: documents seen and reviewed, standing verdicts by kind."""
        return review.progress(project_id)

    return api
