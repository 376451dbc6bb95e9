"""SKOS vocabularies (Turtle, RDF/XML, N-Triples, and whatever else rdflib parses): every skos:Concept that is
not owl:deprecated is a label, identified by its IRI.

Parsing a thesaurus of tens of thousands of concepts takes rdflib many seconds, so the labels read from a file
are cached by the file's content hash: the second read of the same file skips rdflib altogether.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict
from pathlib import Path
from xml.sax import SAXParseException

from rdflib import OWL, RDF, RDFS, SKOS, Graph, Literal, URIRef
from rdflib.plugins.parsers.notation3 import BadSyntax

from ..errors import InputError
from ..labels import Label
from ._text import at, numbered_lines, open_bytes

# Syntaxes that are always UTF-8; XML declares its own encoding, so the XML parser judges it.
UTF8_SYNTAXES = {"turtle", "nt", "n3", "trig", "nquads", "json-ld"}
SYNTAX_NAMES = {"turtle": "Turtle", "xml": "RDF/XML", "nt": "N-Triples", "n3": "Notation3", "nquads": "N-Quads"}
# Part of every cache key: bump it whenever the labels read from the same file would change.
CACHE_VERSION = 1
HASH_CHUNK = 1 << 20


def read_labels(path: Path, syntax: str, language: str = "en") -> list[Label]:
    """`language` is the preferred language of names, aliases and descriptions; untagged text comes next,
    then any other language."""
    language = language.lower()
    cache = _cache_file(path, syntax, language)
    labels = _load_cache(cache)
    if labels is None:
        labels = _read(path, syntax, language)
        _save_cache(cache, labels)
    return labels


def _read(path: Path, syntax: str, language: str) -> list[Label]:
    graph = _parse(path, syntax)
    concepts = set(graph.subjects(RDF.type, SKOS.Concept))
    if not concepts:
        raise InputError(
            f"no skos:Concept in {path} ({len(graph):,} triples read)",
            where=str(path),
            fix="declare each label as a concept: <IRI> a skos:Concept ; skos:prefLabel \"name\"@en .",
        )
    deprecated = {concept for concept in concepts if _is_deprecated(graph, concept)}
    return [_label(graph, c, language, deprecated) for c in sorted(concepts - deprecated, key=str)]


def _is_deprecated(graph: Graph, concept) -> bool:
    return any(str(flag).strip().lower() in ("true", "1") for flag in graph.objects(concept, OWL.deprecated))


def _cache_file(path: Path, syntax: str, language: str) -> Path:
    from ..encoders.base import default_cache_dir

    digest = hashlib.sha256(f"{CACHE_VERSION}\0{syntax}\0{language}\0".encode())
    with open_bytes(path) as f:
        while chunk := f.read(HASH_CHUNK):
            digest.update(chunk)
    return default_cache_dir() / "vocab" / f"{digest.hexdigest()}.json"


def _load_cache(cache: Path) -> list[Label] | None:
    """A missing or unreadable cache entry is a miss: the file is simply parsed again."""
    try:
        rows = json.loads(cache.read_text(encoding="utf-8"))
        return [Label(**{**row, "parents": tuple(row["parents"]), "aliases": tuple(row["aliases"])}) for row in rows]
    except (OSError, ValueError, TypeError, KeyError):
        return None


def _save_cache(cache: Path, labels: list[Label]) -> None:
    """Written to a temporary file and renamed, so a reader never sees half an entry; a cache folder that
    cannot be written only costs the next read its speed."""
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache.parent, prefix=f".{cache.stem}.", suffix=".part")
    except OSError:
        return
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump([asdict(label) for label in labels], f, ensure_ascii=False)
        os.replace(tmp, cache)
    except OSError:
        Path(tmp).unlink(missing_ok=True)


def _parse(path: Path, syntax: str) -> Graph:
    source = str(path)
    if syntax in UTF8_SYNTAXES:
        with open_bytes(path) as f:
            for _, _, error in numbered_lines(f, source):
                if error is not None:
                    raise error
    else:
        open_bytes(path).close()
    graph = Graph()
    try:
        graph.parse(source, format=syntax)
    except BadSyntax as e:
        raise _parse_error(path, syntax, e._why, e.lines + 1) from e
    except SAXParseException as e:
        raise _parse_error(path, syntax, e.getMessage(), e.getLineNumber()) from e
    except Exception as e:  # rdflib's parsers raise many types; each means the file does not parse
        raise _parse_error(path, syntax, str(e) or type(e).__name__, None) from e
    return graph


def _parse_error(path: Path, syntax: str, why: str, line: int | None) -> InputError:
    return InputError(
        f"does not parse as {SYNTAX_NAMES.get(syntax, syntax)}: {why}",
        where=at(str(path), line),
        fix="fix the syntax (a validator such as `rdfpipe` shows the problem), or give the file the extension "
        "of the syntax it is written in (.ttl, .rdf, .nt)",
    )


def _label(graph: Graph, concept, language: str, deprecated: set) -> Label:
    """Links to deprecated concepts are dropped with them, so a child never points at a missing parent."""
    if not isinstance(concept, URIRef):
        raise InputError(
            "a skos:Concept without an IRI (a blank node)",
            where=f"blank node {concept}",
            fix="give every concept an IRI: labels are identified by it",
        )
    name = _name(graph, concept, language)
    keep = {None, name.language if name is not None else None}
    alternatives = _ranked(
        [*graph.objects(concept, SKOS.altLabel), *graph.objects(concept, SKOS.hiddenLabel)], language
    )
    aliases = [str(a).strip() for a in alternatives if a.language in keep or _matches(a, language)]
    notes = _ranked(graph.objects(concept, SKOS.definition), language) or _ranked(
        graph.objects(concept, SKOS.scopeNote), language
    )
    notations = sorted(str(n).strip() for n in graph.objects(concept, SKOS.notation) if isinstance(n, Literal))
    parents = set(graph.objects(concept, SKOS.broader)) | set(graph.subjects(SKOS.narrower, concept))
    text = str(name).strip() if name is not None else ""
    return Label(
        id=str(concept),
        name=text,
        description=str(notes[0]).strip() if notes else "",
        parents=tuple(sorted(str(p) for p in parents - deprecated)),
        aliases=tuple(a for a in dict.fromkeys(aliases) if a and a != text),
        where=str(concept),
        notation=notations[0] if notations else "",
    )


def _name(graph: Graph, concept, language: str) -> Literal | None:
    """skos:prefLabel in the language or untagged, then rdfs:label so; only then either in another language."""
    ranked = [
        _ranked(graph.objects(concept, SKOS.prefLabel), language),
        _ranked(graph.objects(concept, RDFS.label), language),
    ]
    usable = [v for values in ranked for v in values if not v.language or _matches(v, language)]
    others = [v for values in ranked for v in values]
    return (usable or others or [None])[0]


def _matches(literal: Literal, language: str) -> bool:
    tag = (literal.language or "").lower()
    return tag == language or tag.startswith(language + "-")


def _ranked(values, language: str) -> list[Literal]:
    """Literals best first: the preferred language, then untagged, then others (sorted, so stable)."""

    def rank(v: Literal) -> tuple[int, str, str]:
        return (0 if _matches(v, language) else 1 if not v.language else 2, v.language or "", str(v))

    return sorted((v for v in values if isinstance(v, Literal)), key=rank)
