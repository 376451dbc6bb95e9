"""SKOS vocabularies (Turtle, RDF/XML, N-Triples, and whatever else rdflib parses): every skos:Concept that is
not owl:deprecated is a label, identified by its IRI. Concepts of the types or schemes named in `not_assignable`
(a thesaurus' category nodes: STW's zbwext:Thsys, a scheme of facets) are grouping labels, never suggested;
`kinds` lists the types and schemes a file has, so that a user can find them (`taxonomist labels check`).

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
from collections.abc import Sequence

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
CACHE_VERSION = 3
HASH_CHUNK = 1 << 20
BOM = b"\xef\xbb\xbf"

_SKOS = "http://www.w3.org/2004/02/skos/core#"
TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
CONCEPT = _SKOS + "Concept"
PREF_LABEL, ALT_LABEL, HIDDEN_LABEL = _SKOS + "prefLabel", _SKOS + "altLabel", _SKOS + "hiddenLabel"
DEFINITION, SCOPE_NOTE, NOTATION = _SKOS + "definition", _SKOS + "scopeNote", _SKOS + "notation"
BROADER, NARROWER = _SKOS + "broader", _SKOS + "narrower"
IN_SCHEME, TOP_CONCEPT_OF = _SKOS + "inScheme", _SKOS + "topConceptOf"
RDFS_LABEL = "http://www.w3.org/2000/01/rdf-schema#label"
DEPRECATED = "http://www.w3.org/2002/07/owl#deprecated"
# The only predicates the walk asks about; the rest of the file is counted and dropped while parsing.
PREDICATES = frozenset({
    TYPE, PREF_LABEL, ALT_LABEL, HIDDEN_LABEL, RDFS_LABEL, DEFINITION, SCOPE_NOTE, NOTATION,
    BROADER, NARROWER, DEPRECATED, IN_SCHEME, TOP_CONCEPT_OF,
})


class Text(NamedTuple):
    """A literal; `language` is lower-cased, "" when untagged. IRIs are plain strings, blank nodes "_:id"."""

    value: str
    language: str


Term = str | Text
Triple = tuple[str, str, Term]
Objects = dict[tuple[Term, str], list[Term]]  # (subject, predicate) -> objects


class Kind(NamedTuple):
    """A type (besides skos:Concept) or scheme that concepts of a vocabulary have, and how many."""

    iri: str
    concepts: int
    with_narrower: int  # of them, those that have narrower concepts: all of them, for category nodes


def read_labels(path: Path, syntax: str, language: str = "en", not_assignable: Sequence[str] = ()) -> list[Label]:
    """`language` is the preferred language of names, aliases and descriptions; untagged text comes next,
    then any other language. `not_assignable`: types or schemes (IRIs, or their local names) whose concepts
    are grouping labels."""
    language = language.lower()
    not_assignable = tuple(sorted(set(not_assignable)))
    cache = _cache_file(path, syntax, language, not_assignable)
    labels = _load_cache(cache)
    if labels is None:
        labels = _read(path, syntax, language, not_assignable)
        _save_cache(cache, labels)
    return labels


def kinds(path: Path, syntax: str) -> list[Kind]:
    """The types and schemes of the file's concepts, most common first."""
    _, objects, concepts, kinds_of = _walk(path, syntax)
    has_narrower = {p for c in concepts for p in objects.get((c, BROADER), [])}
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for concept in concepts:
        for kind in kinds_of.get(concept, ()):
            counts[kind][0] += 1
            counts[kind][1] += concept in has_narrower
    return sorted((Kind(iri, n, m) for iri, (n, m) in counts.items()), key=lambda k: (-k.concepts, k.iri))


def _walk(path: Path, syntax: str) -> tuple[int, Objects, set[str], dict[str, set[str]]]:
    """Triples read into (number of triples, objects by subject and predicate, concepts, their kinds)."""
    triples, size = _triples(path, syntax)
    objects: Objects = defaultdict(list)
    concepts: set[str] = set()
    kinds_of: dict[str, set[str]] = defaultdict(set)
    for subject, predicate, value in triples:
        if predicate == TYPE:
            if value == CONCEPT:
                concepts.add(subject)
            elif isinstance(value, str):
                kinds_of[subject].add(value)
        elif predicate == NARROWER:  # the inverse of broader: a parent naming its child
            objects[value, BROADER].append(subject)
        elif predicate in (IN_SCHEME, TOP_CONCEPT_OF):
            if isinstance(value, str):
                kinds_of[subject].add(value)
        else:
            objects[subject, predicate].append(value)
    if not concepts:
        raise InputError(
            f"no skos:Concept in {path} ({size:,} triples read)",
            where=str(path),
            fix="declare each label as a concept: <IRI> a skos:Concept ; skos:prefLabel \"name\"@en .",
        )
    return size, objects, concepts, kinds_of


def _read(path: Path, syntax: str, language: str, not_assignable: tuple[str, ...] = ()) -> list[Label]:
    _, objects, concepts, kinds_of = _walk(path, syntax)
    deprecated = {c for c in concepts if _is_deprecated(objects.get((c, DEPRECATED), []))}
    grouping = _grouping(path, concepts, kinds_of, not_assignable)
    return [_label(objects, c, language, deprecated, c not in grouping) for c in sorted(concepts - deprecated)]


def _grouping(path: Path, concepts: set[str], kinds_of: dict[str, set[str]], wanted: tuple[str, ...]) -> set[str]:
    """The concepts of the types or schemes `wanted`; a name no concept has is an error that lists those it has."""
    if not wanted:
        return set()
    present = {kind for concept in concepts for kind in kinds_of.get(concept, ())}
    matched = {w: {k for k in present if k == w or _local_name(k) == w} for w in wanted}
    unknown = [w for w, found in matched.items() if not found]
    if unknown:
        have = ", ".join(sorted(present)[:20]) or "none"
        raise InputError(
            f"no concept in {path} has the type or scheme {', '.join(map(repr, unknown))}",
            where=str(path),
            fix=f"name one the file has (an IRI or its local name): {have}; `taxonomist labels check` lists them",
        )
    kinds = set().union(*matched.values())
    return {c for c in concepts if kinds_of.get(c, set()) & kinds}


def _local_name(iri: str) -> str:
    return iri.rstrip("/#").rsplit("#", 1)[-1].rsplit("/", 1)[-1]


def _is_deprecated(flags: list[Term]) -> bool:
    return any(_lexical(flag).strip().lower() in ("true", "1") for flag in flags)


def _lexical(term: Term) -> str:
    return term.value if isinstance(term, Text) else term


def _cache_file(path: Path, syntax: str, language: str, not_assignable: tuple[str, ...]) -> Path:
    from ..encoders.base import default_cache_dir

    digest = hashlib.sha256(f"{CACHE_VERSION}\0{syntax}\0{language}\0{chr(1).join(not_assignable)}\0".encode())
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


def _label(objects: Objects, concept: str, language: str, deprecated: set[str], assignable: bool = True) -> Label:
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
        assignable=assignable,
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
