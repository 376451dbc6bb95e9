"""SKOS vocabularies (Turtle, RDF/XML, N-Triples, and whatever else rdflib parses): every skos:Concept that is
not owl:deprecated is a label, identified by its IRI.

Turtle, RDF/XML and N-Triples are parsed by pyoxigraph (Rust), some thirty times faster than rdflib. rdflib parses
the other syntaxes, and any file pyoxigraph refuses: it reads some that pyoxigraph does not (RDF/XML in Latin-1),
and its errors are the ones users have always seen, with the line. Either way the triples become plain tuples,
walked once by dict look-ups rather than graph queries. The labels read from a file are still cached by its
content hash: a thesaurus of 15,000 concepts takes a second or two to read, a fifth of one from the cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections import defaultdict
from pathlib import Path
from typing import NamedTuple

import pyoxigraph

from ..atomic import atomic_write
from ..errors import InputError
from ..labels import Label
from ._text import at, numbered_lines, open_bytes

# Syntaxes that are always UTF-8; XML declares its own encoding, so the XML parser judges it.
UTF8_SYNTAXES = {"turtle", "nt", "n3", "trig", "nquads", "json-ld"}
SYNTAX_NAMES = {"turtle": "Turtle", "xml": "RDF/XML", "nt": "N-Triples", "n3": "Notation3", "nquads": "N-Quads"}
FAST_SYNTAXES = {
    "turtle": pyoxigraph.RdfFormat.TURTLE,
    "xml": pyoxigraph.RdfFormat.RDF_XML,
    "nt": pyoxigraph.RdfFormat.N_TRIPLES,
}
# Part of every cache key: bump it whenever the labels read from the same file would change.
CACHE_VERSION = 2
HASH_CHUNK = 1 << 20
BOM = b"\xef\xbb\xbf"

_SKOS = "http://www.w3.org/2004/02/skos/core#"
TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
CONCEPT = _SKOS + "Concept"
PREF_LABEL, ALT_LABEL, HIDDEN_LABEL = _SKOS + "prefLabel", _SKOS + "altLabel", _SKOS + "hiddenLabel"
DEFINITION, SCOPE_NOTE, NOTATION = _SKOS + "definition", _SKOS + "scopeNote", _SKOS + "notation"
BROADER, NARROWER = _SKOS + "broader", _SKOS + "narrower"
RDFS_LABEL = "http://www.w3.org/2000/01/rdf-schema#label"
DEPRECATED = "http://www.w3.org/2002/07/owl#deprecated"
# The only predicates the walk asks about; the rest of the file is counted and dropped while parsing.
PREDICATES = frozenset({
    TYPE, PREF_LABEL, ALT_LABEL, HIDDEN_LABEL, RDFS_LABEL, DEFINITION, SCOPE_NOTE, NOTATION,
    BROADER, NARROWER, DEPRECATED,
})


class Text(NamedTuple):
    """A literal; `language` is lower-cased, "" when untagged. IRIs are plain strings, blank nodes "_:id"."""

    value: str
    language: str


Term = str | Text
Triple = tuple[str, str, Term]
Objects = dict[tuple[Term, str], list[Term]]  # (subject, predicate) -> objects


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
    triples, size = _triples(path, syntax)
    objects: Objects = defaultdict(list)
    concepts: set[str] = set()
    for subject, predicate, value in triples:
        if predicate == TYPE:
            if value == CONCEPT:
                concepts.add(subject)
        elif predicate == NARROWER:  # the inverse of broader: a parent naming its child
            objects[value, BROADER].append(subject)
        else:
            objects[subject, predicate].append(value)
    if not concepts:
        raise InputError(
            f"no skos:Concept in {path} ({size:,} triples read)",
            where=str(path),
            fix="declare each label as a concept: <IRI> a skos:Concept ; skos:prefLabel \"name\"@en .",
        )
    deprecated = {c for c in concepts if _is_deprecated(objects.get((c, DEPRECATED), []))}
    return [_label(objects, c, language, deprecated) for c in sorted(concepts - deprecated)]


def _is_deprecated(flags: list[Term]) -> bool:
    return any(_lexical(flag).strip().lower() in ("true", "1") for flag in flags)


def _lexical(term: Term) -> str:
    return term.value if isinstance(term, Text) else term


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
    """Written atomically, so a reader never sees half an entry; a cache folder that cannot be written only
    costs the next read its speed, hence no error. vars() and json.dumps, not asdict() and json.dump: deep
    copies and the pure-Python streaming encoder took longer than parsing the file."""
    with contextlib.suppress(InputError):  # atomic_write reports every OSError as an InputError
        atomic_write(cache, json.dumps([vars(label) for label in labels], ensure_ascii=False), parents=True)


def _triples(path: Path, syntax: str) -> tuple[list[Triple], int]:
    """The triples with a predicate the walk asks about, and how many triples the file holds."""
    if syntax in FAST_SYNTAXES:
        try:
            return _oxigraph_triples(path, FAST_SYNTAXES[syntax])
        except SyntaxError:
            pass  # rdflib either forgives the file or says where it goes wrong
    return _rdflib_triples(path, syntax)


def _oxigraph_triples(path: Path, syntax: pyoxigraph.RdfFormat) -> tuple[list[Triple], int]:
    kept, size = [], 0
    with open_bytes(path) as f:
        if f.read(len(BOM)) != BOM:
            f.seek(0)
        # The same base as rdflib's, so relative IRIs resolve alike; lenient: an IRI with a space is rdflib's
        # warning, not an error.
        for triple in pyoxigraph.parse(f, syntax, base_iri=path.absolute().as_uri(), lenient=True):
            size += 1
            predicate = triple.predicate.value
            if predicate in PREDICATES:
                kept.append((_oxigraph_term(triple.subject), predicate, _oxigraph_term(triple.object)))
    return kept, size


def _oxigraph_term(term) -> Term:
    if isinstance(term, pyoxigraph.Literal):
        return Text(term.value, term.language or "")
    if isinstance(term, pyoxigraph.BlankNode):
        return f"_:{term.value}"
    return term.value if isinstance(term, pyoxigraph.NamedNode) else str(term)


def _rdflib_triples(path: Path, syntax: str) -> tuple[list[Triple], int]:
    from xml.sax import SAXParseException

    from rdflib import BNode, Graph, Literal  # a quarter of a second to import: only when needed
    from rdflib.plugins.parsers.notation3 import BadSyntax

    source = str(path)
    if syntax in UTF8_SYNTAXES:  # rdflib's decoding errors do not name the line
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

    def term(node) -> Term:
        if isinstance(node, Literal):
            return Text(str(node), (node.language or "").lower())
        return f"_:{node}" if isinstance(node, BNode) else str(node)

    kept = [(term(s), str(p), term(o)) for s, p, o in graph if str(p) in PREDICATES]
    return kept, len(graph)


def _parse_error(path: Path, syntax: str, why: str, line: int | None) -> InputError:
    return InputError(
        f"does not parse as {SYNTAX_NAMES.get(syntax, syntax)}: {why}",
        where=at(str(path), line),
        fix="fix the syntax (a validator such as `rdfpipe` shows the problem), or give the file the extension "
        "of the syntax it is written in (.ttl, .rdf, .nt)",
    )


def _label(objects: Objects, concept: str, language: str, deprecated: set[str]) -> Label:
    """Links to deprecated concepts are dropped with them, so a child never points at a missing parent."""
    if concept.startswith("_:"):
        raise InputError(
            "a skos:Concept without an IRI (a blank node)",
            where=f"blank node {concept}",
            fix="give every concept an IRI: labels are identified by it",
        )

    def of(predicate: str) -> list[Term]:
        return objects.get((concept, predicate), [])

    name = _name(of(PREF_LABEL), of(RDFS_LABEL), language)
    keep = {"", name.language if name is not None else ""}
    alternatives = _ranked(of(ALT_LABEL) + of(HIDDEN_LABEL), language)
    aliases = [a.value.strip() for a in alternatives if a.language in keep or _matches(a, language)]
    notes = _ranked(of(DEFINITION), language) or _ranked(of(SCOPE_NOTE), language)
    notations = sorted(n.value.strip() for n in of(NOTATION) if isinstance(n, Text))
    parents = {_lexical(p) for p in of(BROADER)} - deprecated
    text = name.value.strip() if name is not None else ""
    return Label(
        id=concept,
        name=text,
        description=notes[0].value.strip() if notes else "",
        parents=tuple(sorted(parents)),
        aliases=tuple(a for a in dict.fromkeys(aliases) if a and a != text),
        where=concept,
        notation=notations[0] if notations else "",
    )


def _name(preferred: list[Term], labels: list[Term], language: str) -> Text | None:
    """skos:prefLabel in the language or untagged, then rdfs:label so; only then either in another language."""
    ranked = [_ranked(preferred, language), _ranked(labels, language)]
    usable = [v for values in ranked for v in values if not v.language or _matches(v, language)]
    others = [v for values in ranked for v in values]
    return (usable or others or [None])[0]


def _matches(literal: Text, language: str) -> bool:
    return literal.language == language or literal.language.startswith(language + "-")


def _ranked(values: list[Term], language: str) -> list[Text]:
    """Literals best first: the preferred language, then untagged, then others (sorted, so stable)."""

    def rank(v: Text) -> tuple[int, str, str]:
        return (0 if _matches(v, language) else 1 if not v.language else 2, v.language, v.value)

    literals = [v for v in values if isinstance(v, Text)]
    return sorted(literals, key=rank) if len(literals) > 1 else literals
