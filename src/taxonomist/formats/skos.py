"""SKOS vocabularies (Turtle, RDF/XML, N-Triples, and whatever else rdflib parses): every skos:Concept is a
label, identified by its IRI."""

from __future__ import annotations

from pathlib import Path
from xml.sax import SAXParseException

from rdflib import RDF, SKOS, Graph, Literal, URIRef
from rdflib.plugins.parsers.notation3 import BadSyntax

from ..errors import InputError
from ..labels import Label
from ._text import at, numbered_lines, open_bytes

# Syntaxes that are always UTF-8; XML declares its own encoding, so the XML parser judges it.
UTF8_SYNTAXES = {"turtle", "nt", "n3", "trig", "nquads", "json-ld"}
SYNTAX_NAMES = {"turtle": "Turtle", "xml": "RDF/XML", "nt": "N-Triples", "n3": "Notation3", "nquads": "N-Quads"}


def read_labels(path: Path, syntax: str, language: str = "en") -> list[Label]:
    """`language` is the preferred language of names, aliases and descriptions; untagged text comes next,
    then any other language."""
    graph = _parse(path, syntax)
    concepts = sorted(set(graph.subjects(RDF.type, SKOS.Concept)), key=str)
    if not concepts:
        raise InputError(
            f"no skos:Concept in {path} ({len(graph):,} triples read)",
            where=str(path),
            fix="declare each label as a concept: <IRI> a skos:Concept ; skos:prefLabel \"name\"@en .",
        )
    return [_label(graph, concept, language) for concept in concepts]


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


def _label(graph: Graph, concept, language: str) -> Label:
    if not isinstance(concept, URIRef):
        raise InputError(
            "a skos:Concept without an IRI (a blank node)",
            where=f"blank node {concept}",
            fix="give every concept an IRI: labels are identified by it",
        )
    names = _ranked(graph.objects(concept, SKOS.prefLabel), language)
    name = str(names[0]).strip() if names else ""
    keep = {None, names[0].language if names else None}
    alternatives = _ranked(graph.objects(concept, SKOS.altLabel), language)
    aliases = [str(a).strip() for a in alternatives if a.language in keep or _matches(a, language)]
    notes = _ranked(graph.objects(concept, SKOS.definition), language) or _ranked(
        graph.objects(concept, SKOS.scopeNote), language
    )
    parents = set(graph.objects(concept, SKOS.broader)) | set(graph.subjects(SKOS.narrower, concept))
    return Label(
        id=str(concept),
        name=name,
        description=str(notes[0]).strip() if notes else "",
        parents=tuple(sorted(str(p) for p in parents)),
        aliases=tuple(a for a in dict.fromkeys(aliases) if a and a != name),
        where=str(concept),
    )


def _matches(literal: Literal, language: str) -> bool:
    tag = (literal.language or "").lower()
    return tag == language or tag.startswith(language + "-")


def _ranked(values, language: str) -> list[Literal]:
    """Literals best first: the preferred language, then untagged, then others (sorted, so stable)."""

    def rank(v: Literal) -> tuple[int, str, str]:
        return (0 if _matches(v, language) else 1 if not v.language else 2, v.language or "", str(v))

    return sorted((v for v in values if isinstance(v, Literal)), key=rank)
