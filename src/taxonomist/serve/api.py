"""Our own API (/api, in the OpenAPI schema): what Annif's clients never had — branch filters and exclusions per
request, the hierarchy path of each suggestion, calibrated probabilities and label sets, evidence, label search
and new labels, model info and reload. Every route is a thin caller of the Project and its Model; with a feedback
store, what suggest served is recorded (recording.py) and each result names its document's store id."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Query
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from starlette.concurrency import run_in_threadpool

from ..errors import InputError
from ..feedback import FeedbackStore
from ..labels import Label, LabelSet
from ..model import Model, Ranking
from .annif import score_kind
from .explain import evidence
from .limits import Limits
from .problems import PROBLEM, Problem, bad_request
from .projects import Projects, ServedProject
from .recording import record


# ---------------------------------------------------------------------------- schema
def _integral(value: Any) -> Any:
    """JSON Schema's integer includes 5.0; the strict models take it as 5 (and still refuse "5", 5.5 and true)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


JsonInt = Annotated[int, BeforeValidator(_integral)]


class ProblemOut(BaseModel):
    type: str = "about:blank"
    title: str
    status: int
    detail: str


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The problem+json answers a route documents."""
    said = {400: "Bad request: the detail says what", 403: "Not allowed for this project",
            404: "Not found (a project, label, document or feedback row): the detail says which",
            409: "Conflict with what the store holds", 413: "Body or text over the server's limits",
            503: "Model not available"}
    content = {PROBLEM: {"schema": {"$ref": "#/components/schemas/ProblemOut"}}}
    return {status: {"model": ProblemOut, "description": said[status], "content": content} for status in statuses}


class DocumentIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)  # JSON types as the schema says: no "10" for 10
    id: str | None = Field(None, description="your id, echoed in the result")
    text: str


class SuggestIn(BaseModel):
    """One document (`text`) or several (`documents`); filters apply to each."""

    text: str | None = None
    documents: list[DocumentIn] | None = None
    k: JsonInt = Field(10, ge=1, description="most suggestions per document; clamped to the server's maximum")
    threshold: float = Field(0.0, ge=0.0, le=1.0, description="lowest score (inclusive)")
    min_probability: float | None = Field(None, ge=0.0, le=1.0, description="lowest calibrated probability "
                                          "(calibrated models only)")
    coverage: float | None = Field(None, gt=0.0, lt=1.0, description="a conformal label set per document instead "
                                   "of the top k (calibrated models only): each true label in it with this probability")
    guarantee: Literal["label", "pooled", "set", "fnr"] = Field("label", description="with coverage: what it "
                                                                "guarantees (see `taxonomist suggest --help`)")
    include_under: list[str] = Field(default_factory=list, description="keep only labels in these branches")
    exclude_under: list[str] = Field(default_factory=list, description="drop labels in these branches")
    exclude: list[str] = Field(default_factory=list, description="drop these labels")
    explain: bool = Field(False, description="evidence per suggestion")

    # what _one_source checks, said in the schema too: a text or documents, not both (null counts as absent)
    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={
        "anyOf": [{"required": ["text"], "properties": {"text": {"type": "string"}}},
                  {"required": ["documents"], "properties": {"documents": {"type": "array"}}}],
        "not": {"required": ["text", "documents"],
                "properties": {"text": {"type": "string"}, "documents": {"type": "array"}}}})

    @model_validator(mode="after")
    def _one_source(self) -> "SuggestIn":
        if (self.text is None) == (self.documents is None):
            raise ValueError("give either text (one document) or documents (several), not both or neither")
        return self


class Step(BaseModel):
    id: str
    name: str


class Mention(BaseModel):
    term: str
    start: int
    end: int
    window_start: int
    window_end: int
    window: str


class Lift(BaseModel):
    id: str
    name: str
    own_similarity: float
    child_similarity: float
    lifted_similarity: float


class NearExample(BaseModel):
    row: int = Field(description="the example's row in training order")
    id: str | None = Field(description="its document id, where training was given one")
    text: str | None = Field(description="its opening words, as the model keeps them (null where it keeps none)")
    similarity: float = Field(description="cosine similarity of its embedding to the text's")


class Evidence(BaseModel):
    mentions: list[Mention]
    lifted_by: Lift | None = Field(None, description="the child whose similarity lifted this parent")
    scores: dict[str, float | None] | None = Field(None, description="each scorer's score for the label")
    contributions: dict[str, float | None] | None = Field(
        None, description="logistic fusion only: each part's share of the log-odds; they add up to logit(score)")
    nearest_examples: list[NearExample] | None = Field(None, description="nearest training examples with the label")


class SuggestionOut(BaseModel):
    id: str
    name: str
    notation: str | None
    score: float
    probability: float | None
    path: list[Step] = Field(description="the label's ancestors, root first")
    evidence: Evidence | None = None


class DocumentOut(BaseModel):
    id: str | None
    document: int | None = Field(None, description="the document's id in the feedback store (for feedback), "
                                 "when the server keeps one")
    suggestions: list[SuggestionOut]


class SuggestOut(BaseModel):
    project_id: str
    score: str = Field(description="what `score` is: 'posterior' (zero-shot share) or 'fused'")
    calibrated: bool
    results: list[DocumentOut]


class LabelOut(BaseModel):
    id: str
    name: str
    description: str
    aliases: list[str]
    parents: list[str]
    notation: str | None
    assignable: bool
    children: int


class LabelsOut(BaseModel):
    total: int = Field(description="labels matching, before `limit`")
    labels: list[LabelOut]


class LabelIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)  # JSON types as the schema says: no "10" for 10
    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    description: str = ""
    parents: list[str] = Field(default_factory=list)
    aliases: list[str] = Field(default_factory=list)
    notation: str = ""


class ProjectOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    project_id: str
    name: str
    labels: int
    encoder: str
    is_trained: bool
    documents: int
    checksum: str | None
    calibration: str | None
    annif_score: str = Field(description="what the Annif API's score is for this project")
    held_out_documents: int | None = Field(description="documents training held out to fit the fusion")
    held_out: dict[str, float] | None = Field(None, description="the model's ranking on those held-out documents "
                                              "(scored by fusions fitted without them): P@1, P@5, R@5, nDCG@5 and "
                                              "the candidate shortlist's recall, in percent, and the documents")


class ProjectBrief(BaseModel):
    project_id: str
    name: str
    loaded: bool = Field(description="whether its model is in memory yet")


class ProjectsOut(BaseModel):
    projects: list[ProjectBrief]
    store: bool = Field(description="whether the server keeps a feedback store (feedback and review routes)")


class Health(BaseModel):
    status: str


class Ready(BaseModel):
    status: str
    projects: list[str]


# ---------------------------------------------------------------------------- work
def label_out(labels: LabelSet, i: int) -> LabelOut:
    label = labels[i]
    return LabelOut(id=label.id, name=label.name, description=label.description, aliases=list(label.aliases),
                    parents=list(label.parents), notation=label.notation or None, assignable=label.assignable,
                    children=len(labels.children_index[i]))


def allowed_labels(labels: LabelSet, request: SuggestIn) -> np.ndarray | None:
    """bool (L,) of the labels the filters leave, or None without filters."""
    if not (request.include_under or request.exclude_under or request.exclude):
        return None
    try:
        allowed = labels.under(request.include_under) if request.include_under else np.ones(len(labels), bool)
        if request.exclude_under:
            allowed &= ~labels.under(request.exclude_under)
        if request.exclude:
            unknown = [label_id for label_id in request.exclude if label_id not in labels]
            if unknown:
                raise InputError(f"unknown label ids in exclude: {', '.join(map(repr, unknown[:5]))}")
            allowed[[labels.index_of(label_id) for label_id in request.exclude]] = False
    except InputError as error:
        raise bad_request(error.what) from None
    return allowed


def check_calibrated(model: Model, request: SuggestIn) -> None:
    """Probabilities and sets asked of a model that has none: a 400, before anything is ranked."""
    if (request.coverage is not None or request.min_probability is not None) and model.calibration is None:
        raise bad_request("this model has no calibration, so coverage and min_probability cannot be used; calibrate "
                          "it first (taxonomist calibrate --model M --docs CHECKED.jsonl)")


def select(model: Model, ranking: Ranking, request: SuggestIn, k: int) -> Ranking:
    """`model`'s candidates (or conformal sets) with every filter applied, each row cut to `k`."""
    if request.coverage is not None:
        ranking = model.in_sets(ranking, request.coverage, request.guarantee)
    if request.min_probability is not None:
        ranking = model.above(ranking, min_probability=request.min_probability)
    keep = (ranking.positions >= 0) & (ranking.scores >= request.threshold)
    allowed = allowed_labels(model.labels, request)
    if allowed is not None:
        keep &= allowed[np.maximum(ranking.positions, 0)]
    kept = ranking.keep(keep)
    return Ranking(kept.positions[:, :k], kept.scores[:, :k], kept.kind,
                   None if kept.probabilities is None else kept.probabilities[:, :k])


def check_documents(documents: list[DocumentIn], limits: Limits) -> None:
    """At most max_documents, each at most max_text_chars long."""
    if len(documents) > limits.max_documents:
        raise bad_request(f"{len(documents):,} documents in one request; this server takes at most "
                          f"{limits.max_documents:,} (split the batch, or start it with a larger --max-documents)")
    for i, document in enumerate(documents):
        if len(document.text) > limits.max_text_chars:
            raise Problem(413, "Payload Too Large", f"document {i} has {len(document.text):,} characters; this "
                          f"server takes at most {limits.max_text_chars:,} (--max-text-chars)")


def path_of(labels: LabelSet, position: int) -> list[Step]:
    """The label's ancestors, root first."""
    return [Step(id=labels.ids[a], name=labels.names[a]) for a in labels.path(position)[:-1]]


async def suggest(served: ServedProject, request: SuggestIn, limits: Limits,
                  store: FeedbackStore | None = None) -> SuggestOut:
    """Suggestions for the request's documents, ranked by the project's batcher on the event loop's behalf;
    evidence and the store's writes, slow, run on worker threads."""
    documents = [DocumentIn(text=request.text)] if request.text is not None else request.documents
    check_documents(documents, limits)
    model = served.model  # one model for the whole request, whatever a reload does meanwhile
    texts = [document.text for document in documents]
    check_calibrated(model, request)
    candidates = await asyncio.wrap_future(served.batcher.submit(model, texts))
    ranking = select(model, candidates, request, min(request.k, limits.max_results))
    rows = [[(int(p), j) for j, p in enumerate(positions) if p >= 0] for positions in ranking.positions]
    why = (await run_in_threadpool(lambda: [evidence(model, document.text, [p for p, _ in row]) if row else {}
                                            for document, row in zip(documents, rows)])
           if request.explain else [{}] * len(documents))
    labels = model.labels
    results = [DocumentOut(id=document.id, suggestions=[SuggestionOut(
        id=labels.ids[p], name=labels.names[p], notation=labels[p].notation or None,
        score=float(ranking.scores[i, j]),
        probability=None if ranking.probabilities is None else float(ranking.probabilities[i, j]),
        path=path_of(labels, p),
        evidence=Evidence(**why[i][p]) if p in why[i] else None) for p, j in row])
        for i, (document, row) in enumerate(zip(documents, rows))]
    if store is not None:
        ids = await run_in_threadpool(record, store, served, texts, [d.id for d in documents],
                                      [[(s.id, s.score, s.probability) for s in r.suggestions] for r in results])
        for result, document_id in zip(results, ids):
            result.document = document_id
    return SuggestOut(project_id=served.project_id, score=ranking.kind, calibrated=model.calibration is not None,
                      results=results)


def project_out(served: ServedProject) -> ProjectOut:
    info = served.project.info()
    model = served.model
    return ProjectOut(**info, annif_score=score_kind(model), language=served.language,
                      modification_time=served.modification_time(),
                      held_out_documents=None if model.record is None else int(len(model.record.rows)))


def search_labels(labels: LabelSet, q: str | None, parent: str | None, limit: int) -> LabelsOut:
    """Children of `parent` (roots without one) or, with `q`, every label whose id, name or alias holds it
    (within `parent`'s children when both are given)."""
    if parent is not None:
        if parent not in labels:
            raise Problem(404, "Label not found", f"label '{parent}' is not in this project's label set")
        pool = [int(c) for c in labels.children_index[labels.index_of(parent)]]
    elif q is None:
        pool = [i for i, label in enumerate(labels) if not label.parents]
    else:
        pool = range(len(labels))
    if q is not None:
        needle = q.casefold()
        pool = [i for i in pool if any(needle in text.casefold()
                                       for text in (labels[i].id, labels[i].name, *labels[i].aliases))]
    pool = list(pool)
    return LabelsOut(total=len(pool), labels=[label_out(labels, i) for i in pool[:limit]])


def router(projects: Projects, limits: Limits, store: FeedbackStore | None = None) -> APIRouter:
    api = APIRouter(prefix="/api", tags=["taxonomist"])

    @api.get("/projects", response_model=ProjectsOut)
    def projects_route() -> ProjectsOut:
        """The projects served (what the web UI's project picker lists), and whether feedback is kept."""
        return ProjectsOut(projects=[ProjectBrief(project_id=served.project_id, name=served.project.name,
                                                  loaded=served.loaded) for served in projects.values()],
                           store=store is not None)

    @api.post("/projects/{project_id}/suggest", response_model=SuggestOut, responses=problems(400, 404, 413, 503))
    async def suggest_route(project_id: str, request: SuggestIn) -> SuggestOut:
        """Suggestions for one document or several, best first, with filters, paths and optional evidence."""
        return await suggest(projects.find(project_id), request, limits, store)

    @api.get("/projects/{project_id}/labels", response_model=LabelsOut, responses=problems(400, 404, 503))
    def labels_route(project_id: str, q: str | None = Query(None, description="id, name or alias substring"),
                     parent: str | None = Query(None, description="children of this label id"),
                     limit: int = Query(50, ge=1, description="most labels returned; clamped to the server's "
                                        "maximum")) -> LabelsOut:
        """Search labels by text, or list a label's children (the roots without either)."""
        served = projects.find(project_id)
        return search_labels(served.model.labels, q, parent, min(limit, limits.max_results))

    @api.post("/projects/{project_id}/labels", response_model=LabelOut, status_code=201,
              responses=problems(400, 403, 404, 503))
    def add_label_route(project_id: str, label: LabelIn) -> LabelOut:
        """A new label, suggestible at once, saved with the model (projects started with --allow-learning)."""
        served = projects.find(project_id)
        if not served.allow_learning:
            raise Problem(403, "Changes not allowed", f"Project '{project_id}' is not configured to allow changes "
                          "to its model via API (start the server with --allow-learning " + project_id + ")")
        model = served.project.add_labels([Label(id=label.id, name=label.name, description=label.description,
                                                 parents=tuple(label.parents), aliases=tuple(label.aliases),
                                                 notation=label.notation, where="request body")])
        return label_out(model.labels, model.labels.index_of(label.id))

    @api.get("/projects/{project_id}", response_model=ProjectOut, responses=problems(404, 503))
    def project_route(project_id: str) -> ProjectOut:
        """What the project's model is: labels, encoder, examples, calibration, checksum."""
        return project_out(projects.find(project_id))

    @api.post("/projects/{project_id}/reload", response_model=ProjectOut, responses=problems(404, 503))
    def reload_route(project_id: str) -> ProjectOut:
        """Load the model again from its folder; requests in flight finish on the model they started with."""
        served = projects.find(project_id)
        served.reload()
        return project_out(served)

    return api
