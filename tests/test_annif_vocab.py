"""Annif's vocabularies read unchanged: SKOS (with deprecation, languages, hidden labels, notations, the
parse-once cache), TSV and CSV."""

from pathlib import Path

import pytest
from conftest import label_error as error_of
from conftest import write

from taxonomist.errors import InputError
from taxonomist.formats import detect_labels, skos
from taxonomist.readers import read_labels

DATA = Path(__file__).parent / "data"
Y = "http://example.org/yso/"
S = "http://example.org/s/"
SKOS_PREFIX = "@prefix skos: <http://www.w3.org/2004/02/skos/core#> .\n"




@pytest.fixture
def fresh_cache(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("TAXONOMIST_CACHE_DIR", str(folder))
    return folder / "vocab"


# --- SKOS ---------------------------------------------------------------------------------------------


def test_skos_poly_hierarchy_without_the_deprecated_concept(fresh_cache):
    labels = read_labels(DATA / "annif_vocab.ttl")
    by_id = {label.id: label for label in labels}
    assert set(by_id) == {Y + "sci", Y + "phys", Y + "bio", Y + "biophys"}  # alchemy is deprecated
    assert by_id[Y + "biophys"].parents == (Y + "bio", Y + "phys")  # the link to alchemy went with it
    assert by_id[Y + "phys"].parents == (Y + "sci",)  # inverse skos:narrower
    assert by_id[Y + "bio"].parents == (Y + "sci",)
    assert by_id[Y + "sci"].notation == "500" and by_id[Y + "phys"].notation == "530"
    assert by_id[Y + "bio"].notation == ""


def test_skos_english_names_and_aliases_with_hidden_labels(fresh_cache):
    by_id = {label.id: label for label in read_labels(DATA / "annif_vocab.ttl")}
    assert by_id[Y + "sci"].name == "Science"
    assert by_id[Y + "bio"].name == "Biology"  # untagged
    assert by_id[Y + "biophys"].name == "Biophysics"  # rdfs:label@en before a Finnish prefLabel
    assert by_id[Y + "phys"].aliases == ("phsyics", "physical science")  # hidden + alt, no Finnish
    assert by_id[Y + "bio"].aliases == ("life science",)


def test_skos_language_picks_names_and_aliases(fresh_cache):
    by_id = {label.id: label for label in read_labels(DATA / "annif_vocab.ttl", language="fi")}
    assert by_id[Y + "sci"].name == "Tiede"
    assert by_id[Y + "biophys"].name == "Biofysiikka"
    assert by_id[Y + "bio"].name == "Biology"  # untagged serves every language
    assert by_id[Y + "phys"].aliases == ("luonnontiede",)


def test_notation_changes_the_fingerprint(tmp_path, fresh_cache):
    plain = write(tmp_path, "a.ttl", SKOS_PREFIX + '<http://x/a> a skos:Concept ; skos:prefLabel "A" .\n')
    coded = write(tmp_path, "b.ttl", plain.read_text() + '<http://x/a> skos:notation "1" .\n')
    assert read_labels(plain).fingerprint != read_labels(coded).fingerprint


def test_skos_that_does_not_parse_names_the_line(tmp_path, fresh_cache):
    path = write(tmp_path, "bad.ttl", SKOS_PREFIX + "<http://x/a> a skos:Concept ;\n  skos:prefLabel 'A' \n")
    e = error_of(path)
    assert e.where.startswith(f"{path}:") and "Turtle" in e.what


@pytest.mark.parametrize("name", ["annif_vocab.ttl", "labels_tree.ttl", "labels_tree.rdf", "labels_tree.nt"])
@pytest.mark.parametrize("language", ["en", "fi"])
def test_pyoxigraph_and_rdflib_read_the_same_labels(monkeypatch, name, language):
    def refuse(*args):
        raise AssertionError("Turtle, RDF/XML and N-Triples are pyoxigraph's")

    with monkeypatch.context() as patch:
        patch.setattr(skos, "_rdflib_triples", refuse)
        fast = skos._read(DATA / name, detect_labels(DATA / name), language)
    monkeypatch.setattr(skos, "FAST_SYNTAXES", {})
    assert skos._read(DATA / name, detect_labels(DATA / name), language) == fast


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("bom.ttl", skos.BOM + SKOS_PREFIX.encode() + b'<http://x/a> a skos:Concept ; skos:prefLabel "caf\xc3\xa9" .'),
        (
            "latin1.rdf",
            b'<?xml version="1.0" encoding="ISO-8859-1"?>\n'
            b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"'
            b' xmlns:skos="http://www.w3.org/2004/02/skos/core#"><skos:Concept rdf:about="http://x/a">'
            b"<skos:prefLabel>caf\xe9</skos:prefLabel></skos:Concept></rdf:RDF>\n",
        ),
    ],
)
def test_a_byte_order_mark_and_latin1_xml_still_read(tmp_path, fresh_cache, name, content):
    """pyoxigraph is handed the Turtle past its byte order mark, and refuses Latin-1 XML, which rdflib reads."""
    assert [label.name for label in read_labels(write(tmp_path, name, content))] == ["café"]


def test_language_tags_match_whatever_their_case(tmp_path, fresh_cache):
    path = write(
        tmp_path,
        "case.ttl",
        SKOS_PREFIX + '<http://x/a> a skos:Concept ; skos:prefLabel "Colour"@EN-GB ; skos:altLabel "Color"@en-gb .\n',
    )
    (label,) = read_labels(path, language="fi")  # no Finnish: the British name, and aliases in its language
    assert (label.name, label.aliases) == ("Colour", ("Color",))


# --- the parse-once cache -----------------------------------------------------------------------------


def refuse_to_parse(*args, **kwargs):
    raise AssertionError("the file was parsed although it was cached")


def test_second_read_comes_from_the_cache(monkeypatch, fresh_cache):
    first = read_labels(DATA / "annif_vocab.ttl")
    assert len(list(fresh_cache.glob("*.json"))) == 1
    monkeypatch.setattr(skos, "_triples", refuse_to_parse)
    second = read_labels(DATA / "annif_vocab.ttl")
    assert second.labels == first.labels and second.fingerprint == first.fingerprint
    with pytest.raises(AssertionError, match="although it was cached"):  # another language is another entry
        read_labels(DATA / "annif_vocab.ttl", language="fi")


def test_a_changed_file_is_parsed_again(tmp_path, monkeypatch, fresh_cache):
    path = write(tmp_path, "v.ttl", SKOS_PREFIX + '<http://x/a> a skos:Concept ; skos:prefLabel "Old" .\n')
    assert read_labels(path).names == ["Old"]
    path.write_text(SKOS_PREFIX + '<http://x/a> a skos:Concept ; skos:prefLabel "New" .\n', encoding="utf-8")
    assert read_labels(path).names == ["New"]
    monkeypatch.setattr(skos, "_triples", refuse_to_parse)
    assert read_labels(path).names == ["New"]


def test_a_corrupt_cache_entry_is_a_miss(fresh_cache):
    read_labels(DATA / "annif_vocab.ttl")
    (entry,) = fresh_cache.glob("*.json")
    entry.write_text("{not json", encoding="utf-8")
    assert len(read_labels(DATA / "annif_vocab.ttl")) == 4
    assert entry.read_text(encoding="utf-8").startswith("[")  # rewritten


# --- Annif TSV ----------------------------------------------------------------------------------------


def test_tsv_with_and_without_brackets_and_notation():
    labels = read_labels(DATA / "annif_vocab.tsv")
    assert labels.ids == [S + "1", S + "2", S + "3"]
    assert labels.names == ["Science", "Physics", "Biology"]
    assert [label.notation for label in labels] == ["500", "", "570"]
    assert labels[2].where.endswith("annif_vocab.tsv:4")  # line 3 is blank


def test_tsv_sniffed_without_extension(tmp_path):
    path = write(tmp_path, "subjects", "<http://x/a>\tA\nhttp://x/b\tB\n")
    assert read_labels(path).ids == ["http://x/a", "http://x/b"]


def test_our_headed_tsv_is_still_ours():
    assert read_labels(DATA / "labels_tree.tsv").ids == ["sci", "phys", "bio", "biophys"]


def test_tsv_line_without_tab(tmp_path):
    e = error_of(write(tmp_path, "v.tsv", "<http://x/a>\tA\n<http://x/b> B\n"))
    assert e.where == f"{tmp_path / 'v.tsv'}:2"
    assert "tab" in e.what and "<URI><TAB>label" in e.fix


def test_tsv_with_too_many_fields(tmp_path):
    e = error_of(write(tmp_path, "v.tsv", "<http://x/a>\tA\t1\textra\n"))
    assert e.where.endswith("v.tsv:1") and "4" in e.what


# --- Annif CSV ----------------------------------------------------------------------------------------


def test_csv_two_languages_and_a_deprecated_row():
    labels = read_labels(DATA / "annif_vocab.csv")
    assert labels.ids == [S + "1", S + "2", S + "3"]  # s/old has no label: deprecated
    assert labels.names == ["Science", "Fysiikka", "Biology"]  # no English for 2: the first label column
    assert [label.notation for label in labels] == ["500", "530", ""]
    assert labels[2].where.endswith("annif_vocab.csv:5")


def test_csv_language_choice():
    assert read_labels(DATA / "annif_vocab.csv", language="fi").names == ["Tiede", "Fysiikka", "Biologia"]


def test_csv_sniffed_without_extension(tmp_path):
    assert read_labels(write(tmp_path, "vocab", "uri,label_en\nhttp://x/a,A\n")).names == ["A"]


def test_csv_without_uri_column(tmp_path):
    path = write(tmp_path, "v.csv", "subject,label_en,label_fi\nhttp://x/a,A,B\n")
    e = error_of(path)
    assert e.where == f"{path}:1" and "'uri'" in e.what


def test_csv_with_uri_but_no_label_column(tmp_path):
    e = error_of(write(tmp_path, "v.csv", "uri,notation\nhttp://x/a,1\n"))
    assert e.where.endswith("v.csv:1") and "label_<lang>" in e.what


def test_csv_row_with_too_many_fields(tmp_path):
    e = error_of(write(tmp_path, "v.csv", "uri,label_en\nhttp://x/a,A\nhttp://x/b,B,C\n"))
    assert e.where.endswith("v.csv:3") and "3 fields" in e.what


THESAURUS = SKOS_PREFIX + """@prefix z: <http://example.org/zbwext/> .
<http://example.org/c/V> a skos:Concept, z:Thsys ; skos:prefLabel "V  Economics"@en ; skos:inScheme <http://example.org/stw> .
<http://example.org/c/V.05> a skos:Concept, z:Thsys ; skos:prefLabel "V.05  Prices"@en ; skos:broader <http://example.org/c/V> .
<http://example.org/d/1> a skos:Concept, z:Descriptor ; skos:prefLabel "Inflation rate"@en ; skos:broader <http://example.org/c/V.05> .
<http://example.org/d/2> a skos:Concept, z:Descriptor ; skos:prefLabel "Minimum wage"@en ; skos:broader <http://example.org/c/V> .
"""


def test_skos_category_nodes_named_by_type_are_grouping_labels_that_still_shape_the_tree(tmp_path, fresh_cache):
    path = write(tmp_path, "stw.ttl", THESAURUS)
    assert read_labels(path).assignable.all()  # nothing is left out unless asked
    for name in ("Thsys", "http://example.org/zbwext/Thsys"):  # the local name or the IRI
        labels = read_labels(path, not_assignable=[name])
        assignable = {label.id: label.assignable for label in labels}
        assert assignable == {"http://example.org/c/V": False, "http://example.org/c/V.05": False,
                              "http://example.org/d/1": True, "http://example.org/d/2": True}
        assert labels[labels.index_of("http://example.org/d/1")].parents == ("http://example.org/c/V.05",)
    by_scheme = read_labels(path, not_assignable=["http://example.org/stw"])
    assert [label.assignable for label in by_scheme] == [False, True, True, True]
    kinds = {k.iri: k for k in skos.kinds(path, "turtle")}
    assert kinds["http://example.org/zbwext/Thsys"] == skos.Kind("http://example.org/zbwext/Thsys", 2, 2)
    assert kinds["http://example.org/zbwext/Descriptor"].with_narrower == 0


def test_skos_not_assignable_that_no_concept_has_lists_what_the_file_has(tmp_path, fresh_cache):
    path = write(tmp_path, "stw.ttl", THESAURUS)
    with pytest.raises(InputError) as info:
        read_labels(path, not_assignable=["Category"])
    assert "'Category'" in str(info.value) and "http://example.org/zbwext/Thsys" in info.value.fix
    jsonl = write(tmp_path, "labels.jsonl", '{"id": "a", "name": "A"}\n')
    with pytest.raises(InputError) as info:
        read_labels(jsonl, not_assignable=["Thsys"])
    assert '"assignable": false' in info.value.fix
