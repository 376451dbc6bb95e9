"""Annif's REST API (/v1), answered as Annif answers it so that its clients work unchanged: the same paths,
parameters, result shapes, statuses and problem+json texts as annif/rest.py and annif/openapi/annif.yaml.

Bodies are parsed here rather than by FastAPI: Annif's form fields arrive as strings and are checked against
its schema with jsonschema-style messages ("too many items - 'documents'"), and every failure is a 400.
Scores: a calibrated model's probabilities, else its scores clipped to [0, 1] (`score_kind`); best first,
zeros left out, the threshold inclusive, as Annif's SuggestionBatch.filter.
"""

from __future__ import annotations

import asyncio
import json
import math
from importlib.metadata import version
from typing import Any
from urllib.parse import parse_qsl

import numpy as np
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from ..errors import InputError, NotSupportedError
from ..feedback import FeedbackStore
from ..model import Model, Ranking
from .limits import ANNIF_BATCH, Limits
from .problems import Problem, bad_request
from .projects import Projects, ServedProject
from .recording import record

DEFAULT_LIMIT, DEFAULT_THRESHOLD = 10, 0.0  # annif.yaml's defaults
PROBABILITY, CLIPPED = "calibrated probability", "model score clipped to [0, 1]"


def score_kind(model: Model) -> str:
    """What the Annif API's `score` is for this model."""
    return PROBABILITY if model.calibration is not None else CLIPPED


def annif_results(model: Model, ranking: Ranking, limit: int, threshold: float) -> list[list[tuple[int, float]]]:
    """Per document of `model`'s ranking, (label position, score) best first: at most `limit`, each >= `threshold`
    and > 0."""
    if limit == 0:
        return [[] for _ in ranking.positions]
    values = ranking.probabilities if model.calibration is not None else np.clip(ranking.scores, 0.0, 1.0)
    out = []
    for positions, row in zip(ranking.positions, values.astype(np.float32)):
        keep = (positions >= 0) & (row > 0) & (row >= threshold)
        order = np.argsort(-row[keep], kind="stable")[:limit]
        out.append([(int(p), float(s)) for p, s in zip(positions[keep][order], row[keep][order])])
    return out


# ---------------------------------------------------------------------------- input, checked as Annif does
INT32_MAX = 2**31 - 1  # annif.yaml's `limit` is an int32


def _integer(value: str, name: str, minimum: int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise bad_request(f"{value!r} is not of type 'integer' - '{name}'") from None
    if number < minimum:
        raise bad_request(f"{number} is less than the minimum of {minimum} - '{name}'")
    if number > INT32_MAX:
        raise bad_request(f"{number} is greater than the maximum of {INT32_MAX} (int32) - '{name}'")
    return number


def _fraction(value: str, name: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise bad_request(f"{value!r} is not of type 'number' - '{name}'") from None
    if math.isnan(number) or number < 0.0:
        raise bad_request(f"{value} is less than the minimum of 0.0 - '{name}'")
    if number > 1.0:
        raise bad_request(f"{value} is greater than the maximum of 1.0 - '{name}'")
    return number


def _options(fields: dict[str, str], limits: Limits) -> tuple[int, float, str | None]:
    """limit (clamped to the server's maximum), threshold and language from form fields or query parameters."""
    limit = _integer(fields["limit"], "limit", 0) if "limit" in fields else DEFAULT_LIMIT
    threshold = _fraction(fields["threshold"], "threshold") if "threshold" in fields else DEFAULT_THRESHOLD
    return min(limit, limits.max_results), threshold, fields.get("language") or None


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise bad_request(f"{json.dumps(value)[:80]} is not of type 'string' - '{where}'")
    return value


def _object(value: Any, where: str) -> dict:
    if not isinstance(value, dict):
        raise bad_request(f"{json.dumps(value)[:80]} is not of type 'object'" + (f" - '{where}'" if where else ""))
    return value


def _metadata(value: Any, where: str) -> None:
    for key, item in _object(value, where).items():
        _string(item, f"{where}.{key}")


async def _json(request: Request) -> Any:
    body = await request.body()
    if not body.strip():
        raise bad_request("RequestBody is required")
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise bad_request("Request body is not valid JSON") from None


async def _form(request: Request, limits: Limits) -> dict[str, str]:
    """The form fields, url-encoded (as annif-client sends them) or multipart (as a browser may)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        try:
            form = await request.form(max_part_size=limits.max_body_bytes)
        except Exception as error:  # python-multipart's parse errors have no common base
            raise bad_request(f"the multipart form cannot be read: {error}") from None
        return {key: value for key, value in form.multi_items() if isinstance(value, str)}
    try:
        text = (await request.body()).decode("utf-8")
        return dict(parse_qsl(text, keep_blank_values=True, errors="strict"))
    except (UnicodeDecodeError, ValueError):
        raise bad_request("the form body is not UTF-8 url-encoded text") from None


def _check_text(text: str, limits: Limits, where: str) -> str:
    if len(text) > limits.max_text_chars:
        raise Problem(413, "Payload Too Large", f"the text of {len(text):,} characters ({where}) is longer than "
                      f"this server's limit of {limits.max_text_chars:,}; send a shorter text, or start the server "
                      "with a larger --max-text-chars")
    return text


# ---------------------------------------------------------------------------- answers
def dump_project(served: ServedProject) -> dict[str, Any]:
    """A project as Annif's AnnifProject.dump (vocabulary, its language, whether it is trained, when written)."""
    project = served.project
    return {"project_id": served.project_id, "name": project.name, "language": served.language,
            "backend": {"backend_id": "taxonomist"}, "vocab": dump_vocab(served), "vocab_language": served.language,
            "is_trained": project.model_dir is None or served.modification_time() is not None,
            "modification_time": served.modification_time()}


def dump_vocab(served: ServedProject) -> dict[str, Any]:
    """As Annif's AnnifVocabulary.dump; like Annif's, without a size until the model is loaded."""
    loaded = served.loaded
    return {"vocab_id": served.project_id, "languages": [served.language] if loaded else [],
            "size": len(served.model.labels) if loaded else None, "loaded": loaded}


async def _suggest(served: ServedProject, texts: list[str], limit: int, threshold: float, language: str | None,
                   store: FeedbackStore | None, refs: list[str | None]) -> list[dict[str, list]]:
    """Annif's results, ranked by the project's batcher; with a store, the documents and the scores served (as
    probabilities where the model is calibrated, Annif's score then being one) are recorded."""
    lang = language or served.language
    if lang != served.language:
        raise bad_request(f'language "{lang}" not supported by vocabulary')
    model = served.model  # one model for the whole request, whatever a reload does meanwhile
    labels = model.labels
    ranking = await asyncio.wrap_future(served.batcher.submit(model, texts)) if limit else None
    results = annif_results(model, ranking, limit, threshold) if ranking is not None else [[] for _ in texts]
    calibrated = model.calibration is not None
    if store is not None:  # SQLite waits for the disk: off the event loop
        await run_in_threadpool(record, store, served, texts, refs, [
            [(labels.ids[p], score, score if calibrated else None) for p, score in hits] for hits in results])
    return [{"results": [{"uri": labels.ids[p], "label": labels.names[p], "notation": labels[p].notation or None,
                          "score": score} for p, score in hits]} for hits in results]


def router(projects: Projects, limits: Limits, store: FeedbackStore | None = None) -> APIRouter:
    """Annif's operations; not in our OpenAPI schema (annif.yaml is theirs). With a store, suggestions served are
    recorded and what `learn` takes is kept as `add` feedback."""
    api = APIRouter(prefix="/v1", include_in_schema=False)

    @api.get("/")
    def show_info() -> dict[str, str]:
        return {"title": "Annif REST API", "version": version("taxonomist")}

    @api.get("/vocabs")
    def list_vocabs() -> dict[str, list]:
        return {"vocabs": [dump_vocab(served) for served in projects.values()]}

    @api.get("/projects")
    def list_projects() -> dict[str, list]:
        return {"projects": [dump_project(served) for served in projects.values()]}

    @api.get("/projects/{project_id}")
    def show_project(project_id: str) -> dict[str, Any]:
        return dump_project(projects.find(project_id))

    @api.post("/projects/{project_id}/suggest")
    async def suggest(project_id: str, request: Request) -> JSONResponse:
        fields = await _form(request, limits)  # checked first, as Connexion does, then the project
        if "text" not in fields:
            raise bad_request("'text' is a required property")
        limit, threshold, language = _options(fields, limits)
        text = _check_text(fields["text"], limits, "text")
        served = projects.find(project_id)
        result = await _suggest(served, [text], limit, threshold, language, store, [None])
        return JSONResponse(result[0])

    @api.post("/projects/{project_id}/suggest-batch")
    async def suggest_batch(project_id: str, request: Request) -> JSONResponse:
        body = _object(await _json(request), "")
        limit, threshold, language = _options(dict(request.query_params), limits)
        if "documents" not in body:
            raise bad_request("'documents' is a required property")
        documents = body["documents"]
        if not isinstance(documents, list):
            raise bad_request(f"{json.dumps(documents)[:80]} is not of type 'array' - 'documents'")
        if len(documents) > ANNIF_BATCH:
            raise bad_request("too many items - 'documents'")
        texts = []
        for i, document in enumerate(documents):
            where = f"documents.{i}"
            _object(document, where)
            if "text" not in document:
                raise bad_request(f"'text' is a required property - '{where}'")
            texts.append(_check_text(_string(document["text"], f"{where}.text"), limits, f"{where}.text"))
            if "document_id" in document:
                _string(document["document_id"], f"{where}.document_id")
            if "metadata" in document:
                _metadata(document["metadata"], f"{where}.metadata")
        served = projects.find(project_id)
        results = await _suggest(served, texts, limit, threshold, language, store,
                                 [document.get("document_id") for document in documents])
        for result, document in zip(results, documents):
            result["document_id"] = document.get("document_id")
        return JSONResponse(results)

    @api.post("/projects/{project_id}/learn")
    async def learn(project_id: str, request: Request) -> Response:
        body = await _json(request)
        if not isinstance(body, list):
            raise bad_request(f"{json.dumps(body)[:80]} is not of type 'array'")
        texts, label_ids = _learnable(body, limits)
        served = projects.find(project_id)
        if not served.allow_learning:
            raise Problem(403, "Learning not allowed",
                          f"Project '{project_id}' is not configured to allow learning via API")
        if texts:
            await run_in_threadpool(_learn, served, texts, label_ids, store)
        return Response(status_code=204, headers={"Content-Type": "application/json"})

    @api.post("/detect-language")
    async def detect_language(request: Request) -> JSONResponse:
        body = _object(await _json(request), "")
        for name in ("text", "languages"):
            if name not in body:
                raise bad_request(f"'{name}' is a required property")
        text = _check_text(_string(body["text"], "text"), limits, "text")
        languages = body["languages"]
        if not isinstance(languages, list):
            raise bad_request(f"{json.dumps(languages)[:80]} is not of type 'array' - 'languages'")
        if not languages:
            raise bad_request("[] should be non-empty - 'languages'")
        if len(languages) > 5:
            raise bad_request(f"{json.dumps(languages)} is too long - 'languages'")
        for i, language in enumerate(languages):
            _string(language, f"languages.{i}")
            if not 2 <= len(language) <= 3:
                raise bad_request(f"{language!r} is too {'short' if len(language) < 2 else 'long'} - 'languages.{i}'")
        try:
            proportions = await run_in_threadpool(_detect, text, tuple(languages))
        except ValueError:
            raise bad_request("unsupported candidate languages") from None
        return JSONResponse({"results": [{"language": None if lang == "unk" else lang, "score": score}
                                         for lang, score in proportions.items()]})

    return api


def _learnable(body: list, limits: Limits) -> tuple[list[str], list[list[str]]]:
    """Annif's IndexedDocuments checked; those with a text and subjects kept, as (text, subject URIs)."""
    texts, label_ids = [], []
    for i, document in enumerate(body):
        where = f"{i}"
        _object(document, where)
        if "text" in document:
            _check_text(_string(document["text"], f"{where}.text"), limits, f"{where}.text")
        if "metadata" in document:
            _metadata(document["metadata"], f"{where}.metadata")
        subjects = document.get("subjects")
        if subjects is not None and not isinstance(subjects, list):
            raise bad_request(f"{json.dumps(subjects)[:80]} is not of type 'array' - '{where}.subjects'")
        uris = []
        for j, subject in enumerate(subjects or ()):
            _object(subject, f"{where}.subjects.{j}")
            if "uri" not in subject:
                raise bad_request(f"'uri' is a required property - '{where}.subjects.{j}'")
            uris.append(_string(subject["uri"], f"{where}.subjects.{j}.uri"))
            if "label" in subject:
                _string(subject["label"], f"{where}.subjects.{j}.label")
        if "text" in document and subjects is not None:
            texts.append(document["text"])
            label_ids.append(uris)
    return texts, label_ids


LEARN_WHO = "annif-learn"  # the `who` of feedback that Annif's learn wrote


def _learn(served: ServedProject, texts: list[str], uris: list[list[str]], store: FeedbackStore | None) -> None:
    """Through Project.learn, then into the store as `add` feedback (only once the model took them, so a refused
    request leaves no trace); subjects outside the vocabulary are left out, as Annif's subject index does."""
    labels = served.model.labels
    known = [[uri for uri in doc if uri in labels] for doc in uris]
    pairs = [(text, ids) for text, ids in zip(texts, known) if ids]
    if not pairs:
        return
    try:
        served.project.learn([t for t, _ in pairs], [ids for _, ids in pairs])
    except NotSupportedError as error:  # the model cannot take examples: Annif's 503 for such a backend
        raise Problem(503, "Service unavailable", error.what) from None
    except InputError as error:
        raise bad_request(error.what) from None
    if store is not None:
        store.add_examples(served.project_id, pairs, who=LEARN_WHO,
                           note=f"POST /v1/projects/{served.project_id}/learn")


_DETECTOR_CACHE: dict[str, Any] = {}


def _detect(text: str, languages: tuple[str, ...]) -> dict[str, float]:
    """simplemma's proportions per candidate language, best first, as annif.simplemma_util.detect_language."""
    from simplemma import LanguageDetector
    from simplemma.strategies import DefaultStrategy
    from simplemma.strategies.dictionaries import DefaultDictionaryFactory

    strategy = _DETECTOR_CACHE.get("strategy")
    if strategy is None:  # Annif keeps at most 5 language dictionaries in memory
        strategy = _DETECTOR_CACHE["strategy"] = DefaultStrategy(
            dictionary_factory=DefaultDictionaryFactory(cache_max_size=5))
    proportions = LanguageDetector(languages, lemmatization_strategy=strategy).proportion_in_each_language(text)
    return dict(sorted(proportions.items(), key=lambda item: item[1], reverse=True))
