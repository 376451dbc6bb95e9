"""The command line: `taxonomist suggest`, `taxonomist eval`, `taxonomist labels check`."""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
from collections.abc import Iterator, Sequence
from itertools import islice

from . import __version__
from .errors import InputError, TaxonomistError

BATCH = 2000  # documents scored at once: bounds memory, keeps progress moving
POOL = 20_000  # unlabeled documents used to adapt (context, priors, neighbour graph)


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


# ---------------------------------------------------------------------------- arguments
def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="taxonomist", description="Suggest labels from a label set for documents.")
    parser.add_argument("--version", action="version", version=f"taxonomist {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    suggest = commands.add_parser("suggest", help="rank labels for each document")
    _model_options(suggest)
    suggest.add_argument("--out", help="output file (default: standard output); written atomically")
    suggest.add_argument("--format", choices=["tsv", "csv", "jsonl"], help="default: from --out's extension, else tsv")
    suggest.set_defaults(run=run_suggest)

    evaluate = commands.add_parser("eval", help="score suggestions against the documents' gold labels")
    _model_options(evaluate)
    evaluate.add_argument("--threshold", type=float, default=0.5, help="score threshold for the F1 metrics")
    evaluate.add_argument("--json", action="store_true", help="print the metrics as JSON")
    evaluate.add_argument("--report", help="also write an HTML report with plots to this file")
    evaluate.set_defaults(run=run_eval)

    labels = commands.add_parser("labels", help="inspect a label set")
    label_commands = labels.add_subparsers(dest="labels_command", required=True, metavar="ACTION")
    check = label_commands.add_parser("check", help="validate a label file and summarise it")
    check.add_argument("labels", help="labels file (JSONL, CSV, TSV, SKOS, or an Annif TSV/CSV vocabulary)")
    check.add_argument("--language", default="en", help="label language of SKOS and Annif CSV vocabularies")
    check.set_defaults(run=run_labels_check)
    return parser


def _model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--labels", required=True, help="labels file (JSONL, CSV, TSV or SKOS: Turtle, RDF/XML, N-Triples)")
    p.add_argument("--docs", required=True, help="documents: .jsonl, .csv, .tsv, .txt (one per line), a folder, or - "
                   "(Annif's TSV/.tsv.gz, CSV, JSONL corpora and full-text folders too)")
    p.add_argument("--language", default="en", help="label language of SKOS and Annif CSV vocabularies")
    p.add_argument("-k", type=int, default=5, help="suggestions per document (default 5)")
    p.add_argument("--encoder", default="default",
                   help="default (bundled MiniLM), static (wordllama), model2vec (distilled from MiniLM), "
                   "or a model folder")
    p.add_argument("--unlabeled", help="unlabeled documents to adapt to (default: the documents being classified)")
    p.add_argument("--context", default="auto", help="domain of bare label names, e.g. 'computing'; 'auto' reads it "
                   "off the documents; '' for none")
    p.add_argument("--hierarchy", choices=["broad", "specific", "off"], default="broad",
                   help="how parents are scored through their children: 'broad' when documents are filed under broad "
                   "labels (and their ancestors), 'specific' when they carry only their most specific label")
    p.add_argument("--no-adapt", action="store_true", help="plain label-text similarity: no priors, no neighbours")
    p.add_argument("--skip-invalid", action="store_true", help="skip malformed documents and report how many")
    p.add_argument("--max-doc-chars", type=int, default=1_000_000, help="longest document accepted (characters)")
    p.add_argument("--quiet", action="store_true", help="no progress bars or notes")


# ---------------------------------------------------------------------------- commands
def run_labels_check(args: argparse.Namespace) -> int:
    from .labels import read_labels

    labels = read_labels(args.labels, language=args.language)
    depth = max((len(labels.path(i)) for i in range(len(labels))), default=0)
    described = sum(bool(label.description) for label in labels)
    roots = sum(not label.parents for label in labels)
    print(f"{args.labels}: {len(labels):,} labels, OK")
    print(f"  hierarchy: {'yes' if labels.is_hierarchical else 'flat'}; {roots:,} roots, depth {depth}")
    print(f"  with descriptions: {described:,}; with aliases: {sum(bool(l.aliases) for l in labels):,}")
    print(f"  multiple parents: {sum(len(l.parents) > 1 for l in labels):,}")
    return 0


def run_suggest(args: argparse.Namespace) -> int:
    from .formats.suggestions import atomic_output, format_for, write_rows

    fmt = format_for(args.out, args.format)
    n = written = 0
    with atomic_output(args.out) as handle:  # opened first: a bad --out fails before minutes of encoding
        labels, docs, classifier = _prepare(args)
        for chunk, positions, scores in _ranked_batches(classifier, docs, args):
            rows = [
                (doc.id, rank + 1, labels.ids[p], labels.names[p], float(s))
                for doc, row_p, row_s in zip(chunk, positions, scores)
                for rank, (p, s) in enumerate(zip(row_p, row_s))
                if p >= 0
            ]
            write_rows(rows, handle, fmt, header=n == 0)
            n += len(chunk)
            written += len(rows)
    _report_stream(docs, args, n)
    if args.out and not args.quiet:
        print(f"wrote {written:,} suggestions for {n:,} documents to {args.out}", file=sys.stderr)
    return 0


def run_eval(args: argparse.Namespace) -> int:
    import numpy as np
    import scipy.sparse as sp

    from .evaluate import evaluate

    labels, docs, classifier = _prepare(args, need_gold=True)
    ranked, scores, rows, cols = [], [], [], []
    n = 0
    for chunk, positions, chunk_scores in _ranked_batches(classifier, docs, args):
        ranked.append(positions)
        scores.append(chunk_scores)
        for i, doc in enumerate(chunk):
            for label_id in doc.labels or ():
                rows.append(n + i)
                cols.append(labels.index_of(label_id))
        n += len(chunk)
    _report_stream(docs, args, n)
    if n == 0:
        raise InputError("no documents to evaluate", where=args.docs, fix="give documents with gold labels")
    if not rows:
        raise InputError(f"none of the {n:,} documents has gold labels from the label set", where=args.docs,
                         fix="give each document a 'labels' field (JSONL) or column (CSV, TSV) of label ids")
    gold = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n, len(labels)))
    result = evaluate(np.vstack(ranked), np.vstack(scores), gold, threshold=args.threshold, ks=_ks(args.k))
    print(json.dumps(result.to_dict(), indent=1) if args.json else result.to_text())
    if args.report:
        from .report import write_report

        settings = {"labels": args.labels, "docs": args.docs, "encoder": args.encoder, "documents": n,
                    "adapt": not args.no_adapt, "hierarchy": args.hierarchy,
                    "context": ", ".join(classifier.contexts_) or "none"}
        write_report(result, args.report, title=f"taxonomist eval: {os.path.basename(args.docs)}", extra=settings)
        if not args.quiet:
            print(f"wrote report to {args.report}", file=sys.stderr)
    return 0


# ---------------------------------------------------------------------------- shared steps
def _ks(k: int) -> tuple[int, ...]:
    return tuple(sorted({x for x in (1, 3, 5) if x <= k} | {k}))


def _prepare(args: argparse.Namespace, need_gold: bool = False):
    from .classifier import Classifier
    from .corpus import read_documents
    from .labels import read_labels

    if args.quiet:  # transformers draws its own "Loading weights" bar unless told not to
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
    if args.k < 1:
        raise InputError(f"-k must be at least 1, got {args.k}", fix="ask for one or more suggestions per document")
    labels = read_labels(args.labels, language=args.language)
    docs = read_documents(args.docs, skip_invalid=args.skip_invalid, max_chars=args.max_doc_chars, label_set=labels)
    if need_gold and args.docs == "-":
        raise InputError("eval needs gold labels, which standard input cannot carry", where="<stdin>",
                         fix="give a .jsonl, .csv or .tsv file with a labels field")
    # The pool is given to fit, so per-batch adaptation (adapt=True) is never needed here.
    plain = dict(prior_iterations=0, propagation_alpha=0.0) if args.no_adapt else {}
    context = "" if args.no_adapt and args.context == "auto" else args.context
    classifier = Classifier(labels, encoder=args.encoder, context=context, hierarchy=args.hierarchy, adapt=False,
                            show_progress=not args.quiet, **plain)
    if args.no_adapt:
        classifier.fit()
    else:
        pool = _pool(args.unlabeled or args.docs, args)
        _note(args, f"adapting to {len(pool):,} unlabeled documents")
        classifier.fit(unlabeled=pool or None)
        if classifier.contexts_:
            _note(args, f"domain context for bare label names: {', '.join(classifier.contexts_)}")
    return labels, docs, classifier


def _pool(path: str, args: argparse.Namespace) -> list[str]:
    """Up to POOL texts, a uniform sample (reservoir) of the file: adaptation without holding the corpus."""
    from .corpus import read_documents

    if path == "-":
        raise InputError("documents on standard input can be read only once, but adapting reads them twice",
                         where="<stdin>", fix="pass --no-adapt, or --unlabeled FILE, or write the documents to a file")
    from tqdm import tqdm

    rng = random.Random(0)
    sample: list[str] = []
    docs = read_documents(path, skip_invalid=args.skip_invalid, max_chars=args.max_doc_chars)
    for i, doc in enumerate(tqdm(docs, desc="reading", unit=" docs", disable=args.quiet, file=sys.stderr)):
        if i < POOL:
            sample.append(doc.text)
        elif (j := rng.randrange(i + 1)) < POOL:
            sample[j] = doc.text
    return sample


def _ranked_batches(classifier, docs, args) -> Iterator[tuple[list, object, object]]:
    from tqdm import tqdm

    progress = tqdm(desc="suggesting", unit=" docs", disable=args.quiet, file=sys.stderr)
    iterator = iter(docs)
    try:
        while chunk := list(islice(iterator, BATCH)):
            positions, scores = classifier.rank([doc.text for doc in chunk], args.k)
            progress.update(len(chunk))
            yield chunk, positions, scores
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
        print(f"taxonomist: {total:,} gold labels are not in the label set and were not scored ({top})", file=sys.stderr)


def _note(args: argparse.Namespace, text: str) -> None:
    if not args.quiet:
        print(f"taxonomist: {text}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
