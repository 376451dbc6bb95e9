from pathlib import Path

import pytest
from conftest import label_error as error_of
from conftest import write

from taxonomist.errors import InputError
from taxonomist.labels import Label, LabelSet
from taxonomist.readers import read_labels

DATA = Path(__file__).parent / "data"
T = "http://example.org/t/"
SKOS = "@prefix skos: <http://www.w3.org/2004/02/skos/core#> .\n"




# --- every format reads the same little poly-hierarchy -------------------------------------------------


@pytest.mark.parametrize("suffix", ["jsonl", "csv", "tsv"])
def test_tabular_formats_read_the_same_tree(suffix):
    labels = read_labels(DATA / f"labels_tree.{suffix}")
    assert labels.ids == ["sci", "phys", "bio", "biophys"]
    assert labels.names == ["Science", "Physics", "Biology", "Biophysics"]
    assert [label.parents for label in labels] == [(), ("sci",), ("sci",), ("phys", "bio")]
    assert labels[1].aliases == ("physical science",)
    assert labels[2].aliases == ("life science", "biological science")
    assert labels[0].description == "The systematic study of the world."
    assert labels[3].description == ""
    assert labels.source.endswith(f"labels_tree.{suffix}")


def test_where_points_at_the_line():
    jsonl = read_labels(DATA / "labels_tree.jsonl")  # line 3 is blank
    assert [label.where.rsplit(":", 1)[1] for label in jsonl] == ["1", "2", "4", "5"]
    csv = read_labels(DATA / "labels_tree.csv")  # line 1 is the header
    assert csv[0].where.endswith("labels_tree.csv:2")


@pytest.mark.parametrize("suffix", ["ttl", "rdf"])
def test_skos_reads_concepts_broader_and_inverse_narrower(suffix):
    labels = read_labels(DATA / f"labels_tree.{suffix}")
    by_id = {label.id: label for label in labels}
    assert set(by_id) == {T + "sci", T + "phys", T + "bio", T + "biophys"}
    assert by_id[T + "phys"].parents == (T + "sci",)  # ttl: from sci's skos:narrower
    assert set(by_id[T + "biophys"].parents) == {T + "phys", T + "bio"}  # rdf: one of them via narrower
    assert by_id[T + "sci"].parents == ()
    assert by_id[T + "sci"].description == "The systematic study of the world."
    assert set(by_id[T + "bio"].aliases) == {"life science", "biological science"}
    assert by_id[T + "phys"].where == T + "phys"


def test_skos_prefers_english_then_untagged_and_falls_back_to_scope_note():
    by_id = {label.id: label for label in read_labels(DATA / "labels_tree.ttl")}
    assert by_id[T + "sci"].name == "Science"  # not "Wissenschaft"@de
    assert by_id[T + "biophys"].name == "Biophysics"  # "en-GB" counts as English, before "de"
    assert by_id[T + "bio"].name == "Biology"  # untagged
    assert by_id[T + "phys"].aliases == ("physical science",)  # the German altLabel is left out
    assert by_id[T + "biophys"].description == "Physics applied to living things."  # skos:scopeNote


def test_skos_n_triples():
    labels = read_labels(DATA / "labels_tree.nt")
    assert sorted(labels.names) == ["Physics", "Science"]
    assert labels[labels.index_of(T + "phys")].parents == (T + "sci",)


def test_skos_language_with_no_english_or_untagged_name(tmp_path):
    path = write(
        tmp_path,
        "fi.ttl",
        SKOS + '<http://x/a> a skos:Concept ; skos:prefLabel "Fysiikka"@fi ;'
        ' skos:altLabel "Luonnontiede"@fi, "Fysik"@sv .\n',
    )
    (label,) = read_labels(path)
    assert label.name == "Fysiikka"
    assert label.aliases == ("Luonnontiede",)


def test_poly_hierarchy_indexes_and_views():
    labels = read_labels(DATA / "labels_tree.jsonl")
    assert labels.is_hierarchical
    assert labels.parent_index[3].tolist() == [1, 2]
    assert sorted(labels.children_index[0].tolist()) == [1, 2]
    assert labels.children_index[2].tolist() == [3]
    assert labels.path(3) == [0, 1, 3]
    views = labels.text_views()
    assert views["path"][3] == "Science > Physics > Biophysics"
    assert views["aliases"][2] == "Biology, life science, biological science"
    assert "biophys" in labels and "nope" not in labels


def test_same_content_same_fingerprint_whatever_the_format():
    assert read_labels(DATA / "labels_tree.jsonl").fingerprint == read_labels(DATA / "labels_tree.tsv").fingerprint


@pytest.mark.parametrize(
    ("content", "names"),
    [
        ('{"id": "a", "name": "A"}\n', ["A"]),
        (SKOS + "<http://x/a> a skos:Concept ; skos:prefLabel 'A' .\n", ["A"]),
        ("id\tname\na\tA\n", ["A"]),
        ("id,name\na,A\n", ["A"]),
    ],
)
def test_format_sniffed_when_the_extension_says_nothing(tmp_path, content, names):
    assert read_labels(write(tmp_path, "vocabulary", content)).names == names


# --- validation --------------------------------------------------------------------------------------


def test_duplicate_ids_name_both_lines(tmp_path):
    lines = '{"id": "a", "name": "A"}\n{"id": "b", "name": "B"}\n{"id": "a", "name": "C"}\n'
    path = write(tmp_path, "labels_dup.jsonl", lines)
    e = error_of(path)
    assert "labels_dup.jsonl:3" in e.where and "'id'" in e.where
    assert "labels_dup.jsonl:1" in e.what and "'a'" in e.what


def test_unknown_parent(tmp_path):
    e = error_of(write(tmp_path, "l.csv", "id,name,parent\na,A,\nb,B,zzz\n"))
    assert "l.csv:3" in e.where and "parents" in e.where
    assert "'zzz'" in e.what


def test_parent_written_as_a_name_gets_a_pointed_fix(tmp_path):
    e = error_of(write(tmp_path, "l.csv", "id,name,parent\na,Animals,\nb,Birds,Animals\n"))
    assert "name of label 'a'" in e.fix


def test_cycle_names_the_labels_on_it(tmp_path):
    path = write(
        tmp_path,
        "l.jsonl",
        '{"id": "root", "name": "R"}\n{"id": "a", "name": "A", "parents": ["root", "c"]}\n'
        '{"id": "b", "name": "B", "parent": "a"}\n{"id": "c", "name": "C", "parent": "b"}\n',
    )
    e = error_of(path)
    assert "cycle" in e.what
    assert all(f"'{x}'" in e.what for x in "abc") and "'root'" not in e.what
    assert "l.jsonl:" in e.where


def test_self_parent_is_a_cycle(tmp_path):
    e = error_of(write(tmp_path, "l.tsv", "id\tname\tparents\na\tA\ta\n"))
    assert "cycle" in e.what and "'a' -> 'a'" in e.what
    assert "l.tsv:2" in e.where


def test_skos_cycle_points_at_an_iri(tmp_path):
    path = write(
        tmp_path,
        "c.ttl",
        SKOS
        + "<http://x/a> a skos:Concept ; skos:prefLabel 'A' ; skos:broader <http://x/b> .\n"
        "<http://x/b> a skos:Concept ; skos:prefLabel 'B' ; skos:broader <http://x/a> .\n",
    )
    e = error_of(path)
    assert "cycle" in e.what and e.where.startswith("http://x/")


def test_deep_chain_is_not_a_cycle_and_does_not_overflow():
    labels = [Label(id=str(i), name=f"n{i}", parents=(str(i - 1),) if i else ()) for i in range(5000)]
    assert LabelSet(labels).path(4999)[:2] == [0, 1]


@pytest.mark.parametrize(
    ("name", "content", "line"),
    [
        ("l.csv", "id,name\na,A\nb,  \n", "l.csv:3"),
        ("l.jsonl", '{"id": "a", "name": ""}\n', "l.jsonl:1"),
    ],
)
def test_empty_name(tmp_path, name, content, line):
    e = error_of(write(tmp_path, name, content))
    assert "empty name" in e.what and line in e.where and "'name'" in e.where


def test_skos_concept_without_pref_label_has_an_empty_name(tmp_path):
    path = write(tmp_path, "c.ttl", SKOS + "<http://x/a> a skos:Concept .\n")
    e = error_of(path)
    assert "empty name" in e.what and e.where.startswith("http://x/a")


@pytest.mark.parametrize(("name", "content"), [("l.jsonl", "\n\n"), ("l.csv", "id,name\n")])
def test_empty_label_set(tmp_path, name, content):
    e = error_of(write(tmp_path, name, content))
    assert "empty" in e.what and name in e.where


def test_missing_file(tmp_path):
    e = error_of(tmp_path / "nope.jsonl")
    assert "no such file" in e.what and "nope.jsonl" in e.where


def test_folder_is_not_a_labels_file(tmp_path):
    assert "folder" in error_of(tmp_path).what


@pytest.mark.parametrize(
    ("name", "content", "line"),
    [
        ("l.jsonl", b'{"id": "a", "name": "A"}\n{"id": "b", "name": "caf\xe9"}\n', "l.jsonl:2"),
        ("l.csv", b"id,name\na,A\nb,B\nc,caf\xe9\n", "l.csv:4"),
        ("l.ttl", SKOS.encode() + b"\n<http://x/a> skos:prefLabel 'caf\xe9' .\n", "l.ttl:3"),
    ],
)
def test_non_utf8_bytes_give_the_line(tmp_path, name, content, line):
    e = error_of(write(tmp_path, name, content))
    assert "UTF-8" in e.what and "\\xe9" in e.what
    assert e.where.endswith("/" + line)
    assert "UTF-8" in e.fix


def test_malformed_json_gives_line_and_json_message(tmp_path):
    e = error_of(write(tmp_path, "l.jsonl", '{"id": "a", "name": "A"}\n{"id": "b" "name": "B"}\n'))
    assert e.where == f"{tmp_path / 'l.jsonl'}:2"
    assert "malformed JSON" in e.what and "Expecting ',' delimiter" in e.what


def test_json_array_file_gets_a_json_lines_fix(tmp_path):
    e = error_of(write(tmp_path, "l.json", '[\n{"id": "a", "name": "A"}\n]\n'))
    assert "l.json:1" in e.where and "JSON Lines" in e.fix


@pytest.mark.parametrize(
    ("line", "field", "what"),
    [
        ('{"id": "a", "name": 5}', "name", "must be a string"),
        ('{"id": "a", "name": "A", "aliases": [1, 2]}', "aliases", "list of strings"),
        ('{"id": "a", "name": "A", "parents": {"x": 1}}', "parents", "list of strings"),
        ('{"name": "A"}', "id", "missing 'id'"),
        ('{"id": null, "name": "A"}', "id", "missing 'id'"),
        ('{"id": [1], "name": "A"}', "id", "must be a string"),
        ('["a", "A"]', None, "expected a JSON object"),
    ],
)
def test_json_field_types(tmp_path, line, field, what):
    e = error_of(write(tmp_path, "l.jsonl", line + "\n"))
    assert what in e.what and "l.jsonl:1" in e.where
    if field:
        assert f"'{field}'" in e.where


def test_integer_ids_are_read_as_strings(tmp_path):
    labels = read_labels(write(tmp_path, "l.jsonl", '{"id": 1, "name": "A"}\n{"id": 2, "name": "B", "parent": "1"}\n'))
    assert labels.ids == ["1", "2"] and labels[1].parents == ("1",)


@pytest.mark.parametrize(("header", "missing"), [("id,title", "'name'"), ("name,parent", "'id'"), ("", "'id', 'name'")])
def test_csv_missing_required_columns(tmp_path, header, missing):
    e = error_of(write(tmp_path, "l.csv", f"{header}\na,b\n"))
    assert missing in e.what and "l.csv:1" in e.where
    assert "header" in e.fix


def test_csv_row_with_extra_fields(tmp_path):
    e = error_of(write(tmp_path, "l.csv", "id,name\na,A\nb,Birds, and bees\n"))
    assert "l.csv:3" in e.where and "3 fields" in e.what and "quote" in e.fix


def test_csv_short_row_leaves_cells_empty(tmp_path):
    assert read_labels(write(tmp_path, "l.csv", "id,name,parent\na,A\n")).names == ["A"]
    e = error_of(write(tmp_path, "m.csv", "id,name\na,A\nb\n"))
    assert "empty name" in e.what and "m.csv:3" in e.where


def test_csv_unclosed_quote(tmp_path):
    e = error_of(write(tmp_path, "l.csv", 'id,name\na,"A"x\n'))
    assert "l.csv:2" in e.where and "malformed" in e.what


@pytest.mark.parametrize(
    ("name", "content", "where"),
    [
        ("bad.ttl", SKOS + "<http://x/a> a skos:Concept ;;; oops\n", "bad.ttl:2"),
        ("bad.rdf", '<?xml version="1.0"?>\n<rdf:RDF xmlns:rdf="http://x/">\n<a></b>\n', "bad.rdf:3"),
        ("bad.nt", "<http://x/a> <http://x/b> <http://x/c> .\nnot a triple\n", "bad.nt"),
    ],
)
def test_rdf_that_does_not_parse(tmp_path, name, content, where):
    e = error_of(write(tmp_path, name, content))
    assert "does not parse" in e.what
    assert e.where.endswith(where)


def test_skos_file_without_concepts(tmp_path):
    path = write(tmp_path, "s.ttl", "<http://x/a> <http://www.w3.org/2000/01/rdf-schema#label> 'A' .\n")
    e = error_of(path)
    assert "no skos:Concept" in e.what and "s.ttl" in e.where and "skos:Concept" in e.fix


def test_unrecognisable_format(tmp_path):
    e = error_of(write(tmp_path, "labels", "just some words\n"))
    assert "not a label format" in e.what and ".jsonl" in e.fix


def test_labels_built_in_code_are_validated_too():
    with pytest.raises(InputError, match="duplicate label id 'a'"):
        LabelSet([Label("a", "A"), Label("a", "B")])
    with pytest.raises(InputError, match="empty label id"):
        LabelSet([Label(" ", "A")])
    with pytest.raises(InputError, match="empty"):
        LabelSet([])
