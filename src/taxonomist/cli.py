"""The command line: `taxonomist suggest`, `taxonomist eval`, `taxonomist labels check`."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import sys
from collections.abc import Iterator, Sequence
from itertools import islice
from pathlib import Path
from typing import TextIO

from . import __version__
from .errors import InputError, NotSupportedError, TaxonomistError

BATCH = 2000  # documents scored at once: bounds memory, keeps progress moving
POOL = 20_000  # unlabeled documents used to adapt (context, priors, neighbour graph)
ANNIF_LIMIT, ANNIF_THRESHOLD = 10, 0.0  # annif eval's defaults for --limit and --threshold


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.run(args)
    except TaxonomistError as error:
        print(f"taxonomist: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("taxonomist: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `taxonomist suggest ... | head`
        sys.stderr.close()
        return 0
    except OSError as error:  # the system refused a read or write midway (a full disk): what any file write keeps
        where = f"{error.filename}: " if error.filename else ""
        print(f"taxonomist: error: {where}{error.strerror or error}\n  fix: check free disk space and permissions, "
              "then run again; files being written keep their previous content", file=sys.stderr)
        return 2


# ---------------------------------------------------------------------------- arguments
def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="taxonomist", description="Suggest labels from a label set for documents.")
    parser.add_argument("--version", action="version", version=f"taxonomist {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    suggest = commands.add_parser("suggest", help="rank labels for each document")
    _model_options(suggest)
    suggest.add_argument("--out", help="output file (default: standard output); written atomically. With --format "
                         "annif and a folder of documents: the folder for the NAME.annif files (default: beside them)")
    suggest.add_argument("--format", choices=["tsv", "csv", "jsonl", "annif"],
                         help="default: from --out's extension, else tsv. annif: Annif's results, a NAME.annif file "
                         "per document of a folder (like `annif index`), else one JSON line per document")
    suggest.add_argument("--force", action="store_true", help="overwrite existing NAME.annif files")
    chosen = suggest.add_mutually_exclusive_group()
    chosen.add_argument("--min-probability", type=float, metavar="P",
                        help="only suggestions whose calibrated probability is at least P (at most -k of them)")
    chosen.add_argument("--target-precision", type=float, metavar="Q",
                        help="only suggestions above the probability at which the calibration documents' suggestions "
                        "were right a share Q of the time (at most -k of them)")
    chosen.add_argument("--coverage", type=float, metavar="C",
                        help="a conformal label set per document instead of the top k: each true label in it with "
                        "probability at least C (see --guarantee)")
    suggest.add_argument("--guarantee", choices=["label", "pooled", "set", "fnr"], default="label",
                         help="with --coverage: 'label' (default) each true label is in the set with probability >= C, "
                         "in every label-frequency band; 'pooled' the same over all labels together (smaller sets, "
                         "rare labels may be covered less); 'set' all of a document's true labels are; 'fnr' at "
                         "most a share 1-C of a document's true labels is missing, on average")
    suggest.set_defaults(run=run_suggest)

    evaluate = commands.add_parser("eval", help="score suggestions against the documents' gold labels")
    _model_options(evaluate)
    evaluate.add_argument("--threshold", type=float, default=0.5, help="score threshold for the F1 metrics")
    evaluate.add_argument("--json", action="store_true", help="print the metrics as JSON")
    evaluate.add_argument("--report", help="also write an HTML report with plots to this file")
    evaluate.add_argument("--annif-limit", type=int, default=ANNIF_LIMIT,
                          help="Annif's metrics: suggestions per document, as annif eval --limit (default 10)")
    evaluate.add_argument("--annif-threshold", type=float, default=ANNIF_THRESHOLD,
                          help="Annif's metrics: lowest score of a suggestion, as annif eval --threshold (default 0)")
    evaluate.add_argument("--per-label", metavar="FILE.tsv",
                          help="write Annif's per-subject report (annif eval --results-file) to this file")
    evaluate.add_argument("--coverage", type=float, metavar="C",
                          help="a calibrated model's conformal label sets at this coverage: how many gold labels they "
                          "hold, and their sizes")
    evaluate.add_argument("--guarantee", choices=["label", "pooled", "set", "fnr"], default="label",
                          help="with --coverage: which guarantee the sets are built for (see suggest --guarantee)")
    evaluate.set_defaults(run=run_eval)

    train = commands.add_parser("train", help="learn from labelled documents and save a model folder")
    _model_options(train, training=True)
    train.add_argument("--out", help="model folder to write (atomically: a failed save keeps the previous model)")
    train.add_argument("--update", metavar="DOCS", help="with --model: fold these labelled documents into the model's "
                       "prototypes, ridge head and nearest examples, without retraining the rest")
    train.add_argument("--feedback", metavar="STORE", help="fold reviewers' verdicts from this feedback store "
                       "(taxonomist serve --store) into --model, or, without one, train on them from --labels: "
                       "accepted and added labels become examples; a rejected label is never suggested for its "
                       "document again; documents the model already folded are left out")
    train.add_argument("--project", metavar="ID", help="with --feedback: the store's project to fold (default: its "
                       "only one)")
    train.add_argument("--fine-tune", choices=["auto", "on", "off"], default="auto",
                       help="tune the transformer encoder on the examples (saved with the model): 'auto' does for at most "
                       "1,000 examples, 2 or more per label on average (minutes on a CPU); 'on' whatever their number")
    train.set_defaults(run=run_train)

    calibrate = commands.add_parser("calibrate", help="learn from labelled documents how far the scores can be "
                                    "trusted: probabilities, thresholds, label sets")
    _model_options(calibrate, training=True)
    calibrate.add_argument("--out", help="with --labels: the model folder to write (a zero-shot model with its "
                           "calibration); with --model the model is updated in place (atomically)")
    calibrate.add_argument("--method", choices=["auto", "isotonic", "beta", "platt", "identity"], default="auto",
                           help="how scores become probabilities within each label-frequency band: auto (default) "
                           "takes whichever of the others predicts documents left out of its fit best")
    calibrate.set_defaults(run=run_calibrate)

    labels = commands.add_parser("labels", help="inspect a label set")
    label_commands = labels.add_subparsers(dest="labels_command", required=True, metavar="ACTION")
    check = label_commands.add_parser("check", help="validate a label file and summarise it")
    check.add_argument("labels", help="labels file (JSONL, CSV, TSV, SKOS, or an Annif TSV/CSV vocabulary)")
    _label_file_options(check)
    check.set_defaults(run=run_labels_check)
    add = label_commands.add_parser("add", help="add labels to a saved model: suggestible at once, no retraining")
    add.add_argument("labels", help="file of new labels (any label format); parents may be labels of the model")
    add.add_argument("--model", required=True, help="model folder, updated in place (atomically)")
    _label_file_options(add)
    add.add_argument("--quiet", action="store_true", help="no progress bars or notes")
    add.set_defaults(run=run_labels_add)

    serve = commands.add_parser("serve", help="answer Annif's REST API (/v1) and taxonomist's own (/api) over HTTP")
    serve.add_argument("--project", action="append", required=True, metavar="ID=MODEL_DIR",
                       help="a project to serve: ID=MODEL_DIR (a trained model) or ID=labels:LABELS_FILE (zero-shot); "
                       "repeatable")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument("--allow-learning", action="append", default=[], metavar="ID",
                       help="let clients change this project's model (Annif's learn, new labels); repeatable")
    serve.add_argument("--encoder", help="encoder for labels: projects (default: the bundled MiniLM); a model "
                       "folder keeps its own unless this names one")
    serve.add_argument("--language", default="en", help="the label language (Annif's vocabulary language) and of "
                       "SKOS and Annif CSV label files (default en)")
    store = serve.add_mutually_exclusive_group()
    store.add_argument("--store", default="taxonomist.db", metavar="FILE",
                       help="the SQLite feedback store: documents and suggestions served, reviewers' feedback, Annif's "
                       "learn; made if missing (default taxonomist.db in the current folder)")
    store.add_argument("--no-store", action="store_true", help="keep nothing: no feedback, no review queue")
    from .serve.limits import Limits

    defaults = Limits()
    serve.add_argument("--max-body-bytes", type=int, default=defaults.max_body_bytes,
                       help=f"largest request body; 413 beyond (default {defaults.max_body_bytes:,})")
    serve.add_argument("--max-text-chars", type=int, default=defaults.max_text_chars,
                       help=f"longest document text; 413 beyond (default {defaults.max_text_chars:,})")
    serve.add_argument("--max-documents", type=int, default=defaults.max_documents,
                       help=f"documents per /api request (default {defaults.max_documents:,}; Annif's "
                       "suggest-batch keeps its 32)")
    serve.add_argument("--max-results", type=int, default=defaults.max_results,
                       help=f"most suggestions per document: larger limit or k are clamped (default "
                       f"{defaults.max_results:,})")
    serve.set_defaults(run=run_serve)
    return parser


def _label_file_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--language", default="en", help="label language of SKOS and Annif CSV vocabularies")
    p.add_argument("--not-assignable", action="append", default=[], metavar="TYPE_OR_SCHEME",
                   help="SKOS: concepts of this rdf:type or skos:inScheme (an IRI or its local name, e.g. Thsys) "
                   "are grouping labels, never suggested; repeatable; `labels check` lists a file's types and schemes")


def _model_options(p: argparse.ArgumentParser, training: bool = False) -> None:
    p.add_argument("--labels", help="labels file (JSONL, CSV, TSV or SKOS: Turtle, RDF/XML, N-Triples); with --model "
                   "optional, and it must then be the label set the model was trained on")
    p.add_argument("--model", help="a model folder written by `taxonomist train`" +
                   (" (with --update)" if training else " (default: zero-shot from --labels)"))
    p.add_argument("--docs", required=not training,
                   help=("labelled training documents" if training else "documents") +
                   ": .jsonl, .csv, .tsv, .txt (one per line), a folder, or - "
                   "(Annif's TSV/.tsv.gz, CSV, JSONL corpora and full-text folders too)")
    _label_file_options(p)
    if not training:
        p.add_argument("-k", type=int, default=5, help="suggestions per document (default 5)")
    p.add_argument("--encoder", help="default (bundled MiniLM), static (wordllama), model2vec (distilled from "
                   "MiniLM), or a model folder; a model keeps the encoder it was trained with")
    p.add_argument("--unlabeled", help="unlabeled documents to adapt to (default: the documents being classified)")
    p.add_argument("--context", default="auto", help="domain of bare label names, e.g. 'computing'; 'auto' reads it "
                   "off the documents; '' for none")
    p.add_argument("--hierarchy", choices=["auto", "broad", "specific", "off"], default="auto",
                   help="how parents are scored through their children: 'broad' when documents are filed under broad "
                   "labels (and their ancestors), 'specific' (parents right after their matching children), 'off' "
                   "(documents carry their most specific label); 'auto' (default) reads it off the examples, or "
                   "off the documents, and says what it decided")
    p.add_argument("--no-adapt", action="store_true", help="label-text similarity (and label mentions): no priors, no neighbours")
    p.add_argument("--skip-invalid", action="store_true", help="skip malformed documents and report how many")
    p.add_argument("--strict", action="store_true", help="a gold label that is not in the label set is an error "
                   "(default: counted, reported by file and line, and left out)")
    p.add_argument("--max-doc-chars", type=int, default=1_000_000, help="longest document accepted (characters)")
    p.add_argument("--quiet", action="store_true", help="no progress bars or notes")


# ---------------------------------------------------------------------------- commands
def run_labels_check(args: argparse.Namespace) -> int:
    from .readers import read_labels

    labels = read_labels(args.labels, language=args.language, not_assignable=args.not_assignable)
    depth = max((len(labels.path(i)) for i in range(len(labels))), default=0)
    described = sum(bool(label.description) for label in labels)
    roots = sum(not label.parents for label in labels)
    print(f"{args.labels}: {len(labels):,} labels, OK")
    print(f"  hierarchy: {'yes' if labels.is_hierarchical else 'flat'}; {roots:,} roots, depth {depth}")
    print(f"  with descriptions: {described:,}; with aliases: {sum(bool(l.aliases) for l in labels):,}")
    print(f"  multiple parents: {sum(len(l.parents) > 1 for l in labels):,}")
    grouping = int((~labels.assignable).sum())
    print(f"  grouping only (not assignable, never suggested): {grouping:,}" if grouping else
          "  grouping only: none (mark category labels \"assignable\": false, or see --not-assignable for SKOS)")
    _print_skos_kinds(Path(args.labels))
    return 0


def _print_skos_kinds(path: Path) -> None:
    """A SKOS file's concept types and schemes: category nodes show as a kind whose concepts all have narrower ones."""
    from .formats import NOT_SKOS, detect_labels

    kind = detect_labels(path)
    if kind in NOT_SKOS:
        return
    from .formats import skos

    for k in skos.kinds(path, kind):
        hint = ("  <- every one has narrower concepts: category nodes? --not-assignable " + k.iri
                if k.with_narrower == k.concepts else "")
        print(f"  concepts of {k.iri}: {k.concepts:,} ({k.with_narrower:,} with narrower concepts){hint}")


def run_suggest(args: argparse.Namespace) -> int:
    from .formats import detect_documents
    from .atomic import atomic_output
    from .formats.suggestions import ANNIF, format_for, write_annif_result, write_rows

    fmt = format_for(args.out, args.format)
    if fmt == ANNIF and detect_documents(args.docs) == "textdir":
        return _suggest_annif_files(args)
    n = written = 0
    with atomic_output(args.out) as handle:  # opened first: a bad --out fails before minutes of encoding
        labels, docs, project = _prepare(args)
        for chunk, ranking in _ranked_batches(project, docs, args, select=True):
            hits = _hits(labels, ranking)
            if fmt == ANNIF:
                for doc, doc_hits in zip(chunk, hits):
                    write_annif_result(doc.id, [hit[:4] for hit in doc_hits], handle)
            else:
                rows = [(doc.id, rank + 1, label_id, name, score, probability)
                        for doc, doc_hits in zip(chunk, hits)
                        for rank, (label_id, name, _, score, probability) in enumerate(doc_hits)]
                write_rows(rows, handle, fmt, header=n == 0)
            n += len(chunk)
            written += sum(map(len, hits))
    _report_stream(docs, args, n)
    if args.out and not args.quiet:
        print(f"wrote {written:,} suggestions for {n:,} documents to {args.out}", file=sys.stderr)
    return 0


def _suggest_annif_files(args: argparse.Namespace) -> int:
    """Annif's `index` on a folder: NAME.annif beside each NAME.txt (or in the folder --out names), each written
    atomically. Existing ones are an error before any work unless --force: Annif skips them one by one, which
    leaves a mix of old and new results."""
    from .atomic import atomic_output
    from .formats.suggestions import ANNIF_SUFFIX, write_annif_hits
    from .formats.textdir import document_files

    folder = Path(args.out) if args.out else Path(args.docs)
    if not folder.is_dir():
        raise InputError("--format annif on a folder of documents writes one NAME.annif file per document, and "
                         "--out must then be a folder", where=args.out,
                         fix="give an existing folder as --out, leave --out out to write beside the documents, "
                         "or use --format jsonl/tsv for one file")
    if not args.force:
        targets = [folder / (path.stem + ANNIF_SUFFIX) for path in document_files(Path(args.docs))]
        existing = [target for target in targets if target.exists()]
        if existing:
            raise InputError(f"{len(existing):,} of the {len(targets):,} {ANNIF_SUFFIX} files to write exist already",
                             where=str(existing[0]), fix="pass --force to overwrite them (as annif index --force), "
                             "or remove them")
    labels, docs, project = _prepare(args)
    n = 0
    for chunk, ranking in _ranked_batches(project, docs, args, select=True):
        for doc, doc_hits in zip(chunk, _hits(labels, ranking)):
            with atomic_output(str(folder / (doc.id + ANNIF_SUFFIX))) as handle:
                write_annif_hits([hit[:4] for hit in doc_hits], handle)
        n += len(chunk)
    _report_stream(docs, args, n)
    _note(args, f"wrote {n:,} {ANNIF_SUFFIX} files to {folder}")
    return 0


def run_eval(args: argparse.Namespace) -> int:
    from contextlib import nullcontext

    from .atomic import atomic_output

    if args.annif_limit < 1:
        raise InputError(f"--annif-limit must be at least 1, got {args.annif_limit}", where="--annif-limit",
                         fix="give the number of suggestions per document that Annif's metrics look at, e.g. 10")
    # opened first: a bad path fails before minutes of encoding, and no half-written report is ever left
    with atomic_output(args.per_label) if args.per_label else nullcontext() as per_label:
        _evaluate(args, per_label)
    if args.per_label and not args.quiet:
        print(f"wrote the per-label report to {args.per_label}", file=sys.stderr)
    return 0


def _evaluate(args: argparse.Namespace, per_label: TextIO | None) -> None:
    import numpy as np

    from . import annif_metrics
    from .evaluate import evaluate

    from .reliability import confidence_of

    labels, docs, project = _prepare(args, need_gold=True)
    calibration = project.model.calibration
    ranked, scores, probabilities, candidates, gold_ids, annotated = [], [], [], [], [], []
    for chunk, ranking in _ranked_batches(project, docs, args, max(args.k, args.annif_limit, 5)):
        ranked.append(ranking.positions)
        scores.append(ranking.scores)
        if calibration is not None:  # every candidate, for the label sets
            probabilities.append(ranking.probabilities)
            candidates.append(project.model.candidates([doc.text for doc in chunk]))
        gold_ids += [doc.labels or () for doc in chunk]
        annotated += [doc.labels is not None for doc in chunk]
    n = len(gold_ids)
    _report_stream(docs, args, n)
    if n == 0:
        raise InputError("no documents to evaluate", where=args.docs, fix="give documents with gold labels")
    gold = labels.matrix(gold_ids)
    if not gold.nnz:
        raise InputError(f"none of the {n:,} documents has gold labels from the label set", where=args.docs,
                         fix="give each document a 'labels' field (JSONL) or column (CSV, TSV) of label ids")
    ranked, scores = np.vstack(ranked), np.vstack(scores)
    model = project.model  # a trained model's label frequencies set propensities and bands
    trained = model.counts is not None and model.documents > 0
    result = evaluate(ranked[:, : args.k], scores[:, : args.k], gold, threshold=args.threshold, ks=_ks(args.k),
                      train_counts=model.counts if trained else None, n_train=model.documents if trained else None)
    # Annif evaluates the documents that come with subjects, even when none of them is in the vocabulary
    mask = np.array(annotated)
    pred = annif_metrics.predictions(ranked[mask], scores[mask], len(labels), limit=args.annif_limit,
                                     threshold=args.annif_threshold)
    annif = annif_metrics.metrics(gold[mask], pred)
    confidence = confidence_of(
        calibration, ranked, np.vstack(probabilities) if probabilities else None,
        *(_stack([c.positions for c in candidates], -1), _stack([c.scores for c in candidates], -np.inf))
        if candidates else (None, None), gold, args.coverage, args.guarantee)
    if args.json:
        annif_section = {"limit": args.annif_limit, "threshold": args.annif_threshold, "metrics": annif}
        decisions = [dataclasses.asdict(d) for d in project.model.decisions]
        print(json.dumps(result.to_dict() | {"annif": annif_section, "confidence": confidence.to_dict(),
                                             "decisions": decisions}, indent=1))
    else:
        print(result.to_text())
        print("\n" + confidence.to_text())
        print(f"\nAnnif's metrics, as annif eval prints them (--limit {args.annif_limit} "
              f"--threshold {args.annif_threshold:g})")
        print(annif_metrics.to_text(annif))
    if per_label is not None:
        annif_metrics.write_per_subject(gold[mask], pred, labels, per_label)
    if args.report:
        from .report import write_report

        settings = {"labels": args.labels or args.model, "model": args.model or "none (zero-shot)", "docs": args.docs,
                    "encoder": model.encoder_spec or "custom", "documents": n, "adapt": not args.no_adapt,
                    "hierarchy": model.hierarchy_mode, "context": ", ".join(model.contexts) or "none"}
        write_report(result, args.report, title=f"taxonomist eval: {os.path.basename(args.docs)}", extra=settings,
                     confidence=confidence)
        if not args.quiet:
            print(f"wrote report to {args.report}", file=sys.stderr)


def _stack(blocks: list, fill: float):
    """Row blocks of different widths, padded to the widest."""
    import numpy as np

    width = max(b.shape[1] for b in blocks)
    return np.vstack([np.pad(b, ((0, 0), (0, width - b.shape[1])), constant_values=fill) for b in blocks])


def _hits(labels, ranking) -> list[list[tuple[str, str, str, float, float | None]]]:
    """Each document's suggestions, best first: (label id, name, notation, score, probability or None)."""
    probabilities = ranking.probabilities
    return [[(labels.ids[p], labels.names[p], labels[p].notation, float(s),
              None if probabilities is None else float(probabilities[i, j]))
             for j, (p, s) in enumerate(zip(row_p, row_s)) if p >= 0]
            for i, (row_p, row_s) in enumerate(zip(ranking.positions, ranking.scores))]


def run_train(args: argparse.Namespace) -> int:
    from .encoders.fine_tune import is_tuned
    from .readers import read_labels

    if args.feedback:
        return _train_feedback(args)
    if args.project:
        raise InputError("--project names the feedback store's project", fix="pass --feedback STORE as well")
    if args.update:
        return _train_update(args)
    if not args.docs or not args.out:
        raise InputError("train needs labelled documents and a model folder to write",
                         fix="pass --docs TRAIN.jsonl --out MODEL/ (or --model MODEL --update MORE.jsonl)")
    if args.model:
        raise InputError("--model is for --update; a new model is written with --out", where=args.model,
                         fix="pass --update MORE.jsonl to add examples to it, or leave --model out")
    labels = read_labels(_require_labels(args), language=args.language, not_assignable=args.not_assignable)
    texts, label_ids, ids = _examples(args.docs, args, labels)
    project = _project(args, labels, model_dir=args.out)
    pool = None
    if args.unlabeled and not args.no_adapt:
        pool = _pool(args.unlabeled, args)
        _note(args, f"adapting to {len(pool):,} unlabeled documents")
    model = project.train(texts, label_ids, unlabeled=pool or None, ids=ids)
    _note_decisions(args, model)
    fused = f"{model.fusion.kind} fusion learnt on held-out examples" if model.fusion is not None else "prototypes only"
    tuned = "; encoder fine-tuned on them" if is_tuned(model.encoder.identity) else ""
    _note(args, f"trained on {len(texts):,} documents ({int((model.counts > 0).sum()):,} of {len(labels):,} labels "
          f"have examples; {fused}{tuned}); model written to {args.out}")
    return 0


def _train_update(args: argparse.Namespace) -> int:
    if not args.model:
        raise InputError("--update adds examples to a saved model", fix="pass --model MODEL as well")
    if args.docs:
        raise InputError("--update takes the new documents itself; --docs is for training a new model",
                         fix="leave --docs out: --model MODEL --update MORE.jsonl")
    project = _project(args, _given_labels(args), model_dir=args.model, allow_learning=True)
    texts, label_ids, ids = _examples(args.update, args, project.model.labels)
    report = project.learn(texts, label_ids, ids=ids)
    _note(args, f"updated {args.model}: {report['documents']:,} documents folded into the prototypes, ridge head and "
          f"nearest examples of {report['labels']:,} labels ({report['new_to_examples']:,} had no examples before); "
          "the sparse word model and the fusion are unchanged until the next full `taxonomist train`")
    return 0


def _train_feedback(args: argparse.Namespace) -> int:
    """Reviewers' verdicts as examples: folded into a model trained with examples (as --update), else a new model
    trained on them from the label set (--labels, or a zero-shot --model's own)."""
    from .feedback import FeedbackStore, examples_from, resolve_project
    from .project import Project

    if not args.out:
        raise InputError("train --feedback writes a new model folder", fix="pass --out NEW_MODEL/")
    if args.docs or args.update:
        raise InputError("--feedback takes its examples from the store; --docs and --update are other sources",
                         fix="leave out --docs and --update (train on them separately)")
    with FeedbackStore(args.feedback, create=False) as store:
        project_id = resolve_project(store, args.project)
        base = _project(args, _given_labels(args), model_dir=args.model, allow_learning=True) if args.model else None
        labels = base.model.labels if base else _given_labels(args)
        examples = examples_from(store, project_id, labels, dict(base.model.folded) if base else None)
    kept = (f"; {len(examples.rejections):,} rejected labels kept with the model (never suggested again for the "
            "document they were rejected for, nor a positive)")
    only = f"; {examples.rejected_only:,} documents with only rejections are no example" if examples.rejected_only else ""
    again = (f"; {examples.already_folded:,} documents left out, already folded into {args.model} with the same "
             "labels" if examples.already_folded else "")
    if not examples.texts:
        if examples.already_folded:
            raise InputError(f"nothing new to fold: the model already learnt all {examples.already_folded:,} "
                             f"reviewed documents of project {project_id!r}", where=args.feedback,
                             fix="review more documents first")
        raise InputError(f"the feedback for project {project_id!r} accepts or adds no label, so it gives no "
                         "training example", where=args.feedback, fix="accept or add labels in the review queue")
    folded = (f"{examples.documents:,} reviewed documents of project {project_id!r} ({examples.accepted:,} "
              f"accepted and {examples.added:,} added labels)")
    feedback = {"rejections": examples.rejections, "folded": examples.folded, "ids": examples.refs}
    if base is not None and base.model.counts is not None:
        report = base.learn(examples.texts, examples.label_ids, out=args.out, **feedback)
        _note(args, f"folded {folded} into the prototypes, ridge head and nearest examples of {report['labels']:,} "
              f"labels{kept}{only}{again}; model written to {args.out}")
        return 0
    if base is not None:  # a zero-shot model folder: a new model with its label set, encoder and configuration
        model = base.model
        project = Project(model_dir=args.out, labels=labels, encoder=args.encoder or model.encoder_spec,
                          config=model.config, adapt=not args.no_adapt, show_progress=not args.quiet)
    else:
        project = _project(args, labels, model_dir=args.out)
    model = project.train(examples.texts, examples.label_ids, **feedback)
    _note_decisions(args, model)
    _note(args, f"trained on {folded}{kept}{only}; model written to {args.out}")
    return 0


def run_calibrate(args: argparse.Namespace) -> int:
    """Calibrate a trained model in place (--model), or a zero-shot setup (--labels) written to --out."""
    from .calibrate import Calibrator

    if not args.docs:
        raise InputError("calibrate needs labelled documents the model did not learn from",
                         fix="pass --docs CHECKED.jsonl: a few hundred documents with their correct labels")
    if bool(args.model) == bool(args.out):
        raise InputError("calibrate either updates a trained model (--model) or writes a calibrated zero-shot model "
                         "(--labels and --out)", fix="pass --model MODEL, or --labels LABELS --out MODEL")
    args.strict, args.k = True, 1  # a calibration label outside the label set is an error, not a count
    labels, docs, project = _prepare(args)
    texts, label_ids = [], []
    for doc in docs:
        texts.append(doc.text)
        label_ids.append(list(doc.labels or ()))
    _report_stream(docs, args, len(texts))
    if not texts:
        raise InputError("no calibration documents", where=args.docs, fix="give labelled documents")
    model = project.calibrate(texts, label_ids, calibrator=Calibrator(method=args.method))
    if args.out:
        project.save(args.out)
    conformal, calibrator = model.calibration.conformal, model.calibration.calibrator
    chosen = ""
    if calibrator.cv_brier_:  # "auto": say what it chose from
        briers = ", ".join(f"{name} {value:.4f}" for name, value in calibrator.cv_brier_.items())
        chosen = f"; scores mapped by {calibrator.method_} (Brier on documents left out of the fit: {briers})"
    _note(args, f"calibrated on {len(texts):,} documents ({len(conformal.scores_):,} gold labels, of which the "
          f"candidates hold {100 * conformal.recall_:.1f}%){chosen}; model written to {args.out or args.model}")
    return 0


def _examples(path: str, args: argparse.Namespace, labels) -> tuple[list[str], list[list[str]], list[str]]:
    """Documents with at least one known label (texts, labels, ids); the rest are counted and reported, not
    silently dropped."""
    from tqdm import tqdm

    from .readers import read_documents

    docs = read_documents(path, skip_invalid=args.skip_invalid, max_chars=args.max_doc_chars, label_set=labels,
                          strict=args.strict)
    texts, label_ids, ids, unlabeled = [], [], [], 0
    for doc in tqdm(docs, desc="reading", unit=" docs", disable=args.quiet, file=sys.stderr):
        if doc.labels:
            texts.append(doc.text)
            label_ids.append(list(doc.labels))
            ids.append(doc.id)
        else:
            unlabeled += 1
    _report_stream(docs, args, len(texts) + unlabeled)
    if unlabeled:
        _note(args, f"{unlabeled:,} documents have no label from the label set and were not used for training")
    if not texts:
        raise InputError("no training documents with labels from the label set", where=path,
                         fix="give each document a 'labels' field (JSONL) or column (CSV, TSV) of label ids")
    return texts, label_ids, ids


def run_labels_add(args: argparse.Namespace) -> int:
    from .formats import read_label_file
    from .project import Project

    # checked together with the model's labels below
    new = read_label_file(Path(args.labels), args.language, args.not_assignable)
    if not new:
        raise InputError("the file holds no labels", where=args.labels, fix="give a file with one or more labels")
    model = Project(model_dir=args.model, show_progress=not args.quiet).add_labels(new)
    _note(args, f"added {len(new):,} labels to {args.model} (now {len(model.labels):,}); suggestible at once")
    return 0


def run_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from .feedback import FeedbackStore
    from .serve.app import create_app
    from .serve.limits import Limits
    from .serve.process import tune_for_serving
    from .serve.projects import Projects, ProjectSpec, ServedProject, builder

    try:
        limits = Limits(args.max_body_bytes, args.max_text_chars, args.max_documents, args.max_results)
    except ValueError as error:
        raise InputError(str(error), fix="give limits of 1 or more") from None
    specs = [ProjectSpec.parse(text) for text in args.project]
    unknown = sorted(set(args.allow_learning) - {spec.project_id for spec in specs})
    if unknown:
        raise InputError(f"--allow-learning names projects that are not served: {', '.join(unknown)}",
                         fix="name ids given with --project")
    projects = Projects([ServedProject(builder(spec, encoder=args.encoder, language=args.language,
                                              allow_learning=spec.project_id in args.allow_learning),
                                      language=args.language) for spec in specs])
    tune_for_serving()
    store = None if args.no_store else FeedbackStore(args.store)
    try:
        uvicorn.run(create_app(projects, limits, store=store), host=args.host, port=args.port)
    finally:
        if store is not None:
            store.close()
    return 0


# ---------------------------------------------------------------------------- shared steps
def _ks(k: int) -> tuple[int, ...]:
    return tuple(sorted({x for x in (1, 3, 5) if x <= k} | {k}))


def _prepare(args: argparse.Namespace, need_gold: bool = False):
    """The label set, the documents and the project, fitted to the documents' corpus (or --unlabeled)."""
    from .readers import read_documents

    if args.quiet:  # transformers draws its own "Loading weights" bar unless told not to
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
    if args.k < 1:
        raise InputError(f"-k must be at least 1, got {args.k}", fix="ask for one or more suggestions per document")
    project = _project(args, _given_labels(args), model_dir=args.model)
    labels = project.model.labels if args.model else project.labels
    docs = read_documents(args.docs, skip_invalid=args.skip_invalid, max_chars=args.max_doc_chars, label_set=labels,
                          strict=args.strict)
    if need_gold and args.docs == "-":
        raise InputError("eval needs gold labels, which standard input cannot carry", where="<stdin>",
                         fix="give a .jsonl, .csv or .tsv file with a labels field")
    if _wants_probabilities(args):  # before minutes of encoding
        from .calibrate import check_fraction

        if not args.model:
            raise NotSupportedError("a zero-shot setup has no calibration, so it gives no probabilities or label sets",
                                    fix="calibrate it first: taxonomist calibrate --labels L --docs CHECKED.jsonl "
                                        "--out MODEL, then suggest --model MODEL")
        project.model.require_calibration("probabilities or label sets")
        for name in ("coverage", "min_probability", "target_precision"):
            if getattr(args, name, None) is not None:
                check_fraction(getattr(args, name), f"--{name.replace('_', '-')}", "0.9")
    pool = None
    if not args.no_adapt:
        # reading the documents to adapt also checks their gold labels under --strict, before minutes of encoding
        pool = _pool(args.unlabeled or args.docs, args, None if args.unlabeled else labels)
        _note(args, f"adapting to {len(pool):,} unlabeled documents")
    model = project.adapt(pool)
    _note_decisions(args, model)
    if model.calibration is None and args.command == "suggest":
        _note(args, "scores are not probabilities: the model is not calibrated (taxonomist calibrate)")
    if getattr(args, "coverage", None) is not None:
        _note_sets(args, model)
    return labels, docs, project


def _note_sets(args: argparse.Namespace, model) -> None:
    """Which label-frequency bands (training examples; calibration documents for a model without examples) have
    a threshold of their own, share one, or are out of the candidates' reach."""
    from .reliability import BAND_NAMES

    thresholds = model.calibration.set_thresholds(args.coverage, args.guarantee)
    note = f"label sets at coverage {args.coverage:g} ({args.guarantee} guarantee; calibration: " \
           f"{model.calibration.source})"
    for group in thresholds.shared:
        note += "; the labels of frequency bands " + " and ".join(BAND_NAMES[b] for b in group) + \
                " share one threshold (too few calibration labels for one each)"
    if thresholds.capped_bands:
        note += "; those of bands " + ", ".join(BAND_NAMES[b] for b in thresholds.capped_bands) + \
                " are covered less: the candidates miss too many of them"
    _note(args, note)


def _wants_probabilities(args: argparse.Namespace) -> bool:
    return any(getattr(args, name, None) is not None for name in ("coverage", "min_probability", "target_precision"))


def _given_labels(args: argparse.Namespace):
    from .readers import read_labels

    if args.model:
        return read_labels(args.labels, language=args.language, not_assignable=args.not_assignable) if args.labels else None
    return read_labels(_require_labels(args), language=args.language, not_assignable=args.not_assignable)


def _project(args: argparse.Namespace, labels, *, model_dir: str | None = None, allow_learning: bool = False):
    """The project the options describe; --no-adapt makes it plain similarity (Project's `adapt`)."""
    from .config import Config
    from .project import Project

    config = Config.from_options(context=args.context, hierarchy=args.hierarchy,
                                 fine_tune=getattr(args, "fine_tune", "auto"))
    return Project(model_dir=model_dir, labels=labels, encoder=args.encoder, config=config,
                   adapt=not args.no_adapt, allow_learning=allow_learning, show_progress=not args.quiet)


def _note_decisions(args: argparse.Namespace, model) -> None:
    for decision in model.decisions:
        _note(args, f"{decision.step}: {decision.choice} ({decision.why})")


def _require_labels(args: argparse.Namespace) -> str:
    if not args.labels:
        raise InputError("no label set given", fix="pass --labels FILE, or --model FOLDER of a trained model")
    return args.labels


def _pool(path: str, args: argparse.Namespace, label_set=None) -> list[str]:
    """Up to POOL texts, a uniform sample (reservoir) of the file: adaptation without holding the corpus."""
    from .readers import read_documents

    if path == "-":
        raise InputError("documents on standard input can be read only once, but adapting reads them twice",
                         where="<stdin>", fix="pass --no-adapt, or --unlabeled FILE, or write the documents to a file")
    from tqdm import tqdm

    rng = random.Random(0)
    sample: list[str] = []
    docs = read_documents(path, skip_invalid=args.skip_invalid, max_chars=args.max_doc_chars, label_set=label_set,
                          strict=args.strict)
    for i, doc in enumerate(tqdm(docs, desc="reading", unit=" docs", disable=args.quiet, file=sys.stderr)):
        if i < POOL:
            sample.append(doc.text)
        elif (j := rng.randrange(i + 1)) < POOL:
            sample[j] = doc.text
    return sample


def _ranked_batches(project, docs, args, k: int | None = None, *, select: bool = False) -> Iterator[tuple[list, object]]:
    """Documents in chunks of BATCH with their Ranking: the top k (default -k); with `select`, what suggest's
    --coverage, --min-probability or --target-precision choose instead."""
    from tqdm import tqdm

    progress = tqdm(desc="suggesting", unit=" docs", disable=args.quiet, file=sys.stderr)
    iterator = iter(docs)
    model = project.model
    try:
        while chunk := list(islice(iterator, BATCH)):
            texts = [doc.text for doc in chunk]
            if select and args.coverage is not None:
                ranking = model.label_sets(texts, args.coverage, args.guarantee)
            else:
                ranking = model.rank(texts, k or args.k)
                if select and (args.min_probability is not None or args.target_precision is not None):
                    ranking = model.above(ranking, min_probability=args.min_probability,
                                          target_precision=args.target_precision)
            progress.update(len(chunk))
            yield chunk, ranking
    finally:
        progress.close()


def _report_stream(docs, args: argparse.Namespace, n: int) -> None:
    if docs.skipped:
        print(f"taxonomist: skipped {docs.skipped:,} invalid documents; first problems:", file=sys.stderr)
        for problem in docs.problems[:5]:
            print(f"  {problem}", file=sys.stderr)
    if docs.unknown_labels:
        total = sum(docs.unknown_labels.values())
        top = ", ".join(f"{label!r} ×{count}" for label, count in docs.unknown_labels.most_common(5))
        print(f"taxonomist: {total:,} gold labels are not in the label set and were not scored ({top}); "
              "--strict makes them an error; first ones:", file=sys.stderr)
        for where, label in docs.unknown_where[:5]:
            print(f"  {where}: {label!r}", file=sys.stderr)


def _note(args: argparse.Namespace, text: str) -> None:
    if not args.quiet:
        print(f"taxonomist: {text}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
