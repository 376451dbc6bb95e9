"""One self-contained HTML page for an Evaluation: tables plus PNG plots inlined, so it opens offline."""

from __future__ import annotations

import base64
import html
import io
import os
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .atomic import atomic_write
from .evaluate import Evaluation
from .reliability import Confidence

_CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #222; max-width: 980px;
       margin: 2em auto; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: .2em; } h2 { font-size: 1.2em; margin-top: 1.8em; }
p.sub, p.hint { color: #666; margin-top: 0; }
table { border-collapse: collapse; margin: .6em 0; font-variant-numeric: tabular-nums; }
th, td { padding: .25em .8em; border-bottom: 1px solid #e3e3e3; text-align: right; }
th:first-child, td:first-child { text-align: left; }
thead th { border-bottom: 2px solid #bbb; background: #f6f6f6; }
.tables { display: flex; flex-wrap: wrap; gap: 2.5em; align-items: flex-start; }
img { max-width: 100%; display: block; margin: .6em 0; }
"""
_RIGHT, _WRONG, _ALL = "#2e7d32", "#c62828", "#546e7a"


def write_report(evaluation: Evaluation, path: str | os.PathLike[str], *, title: str,
                 extra: dict[str, Any] | None = None, confidence: Confidence | None = None) -> Path:
    """Write the report atomically: an interrupted write leaves any previous report as it was."""
    path = Path(path)
    atomic_write(path, _page(evaluation, title, extra or {}, confidence), parents=True)
    return path


def _probabilities(confidence: Confidence | None) -> str:
    """The reliability diagram and coverage against set size of a calibrated model, else why there are none."""
    if confidence is None or confidence.calibration is None:
        return "<p class=\"hint\">The model is not calibrated: its scores are not probabilities (taxonomist calibrate).</p>"
    r = confidence.reliability
    numbers = ", ".join(f"{k} {v:.4f}" for k, v in (r.ece | r.brier).items())
    return (f"<p class=\"sub\">Calibration: {html.escape(confidence.calibration)}. {numbers}.</p>"
            f"{_img(_reliability_plot(confidence), 'reliability diagram')}"
            f"{_img(_coverage_plot(confidence), 'coverage against set size')}")


def _reliability_plot(confidence: Confidence) -> Figure:
    fig, ax = _figure()
    curve = confidence.reliability.curve
    points = [(p, r, n) for p, r, n in zip(curve["probability"], curve["right"], curve["pairs"]) if n]
    ax.plot([0, 1], [0, 1], color="#999", linestyle="--", linewidth=1, label="perfectly calibrated")
    if points:
        p, r, n = map(np.array, zip(*points))
        ax.plot(p, r, color=_ALL, marker="o", linewidth=1.6, label="top-5 suggestions")
        ax.scatter(p, r, s=10 + 200 * n / n.max(), color=_ALL, alpha=0.3)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("probability given (bin mean; marker area: suggestions in the bin)")
    ax.set_ylabel("share right")
    ax.legend(frameon=False, loc="upper left")
    return fig


def _coverage_plot(confidence: Confidence) -> Figure:
    fig, ax = _figure()
    if confidence.curve:
        sizes = [c["mean_size"] for c in confidence.curve]
        achieved = [100 * c["coverage"] for c in confidence.curve]
        ax.plot(sizes, achieved, color=_ALL, marker="o", label="conformal sets (each true label)")
        ax.scatter(sizes, [100 * c["requested"] for c in confidence.curve], color="#222", marker="_", s=200,
                   label="coverage asked for")
        ax.axhline(100 * confidence.recall, color=_WRONG, linestyle=":", linewidth=1,
                   label="candidates' recall (the cap)")
        ax.legend(frameon=False, loc="lower right")
    else:
        _no_data(ax)
    ax.set_xlabel("mean set size (labels per document)")
    ax.set_ylabel("gold labels inside (%)")
    return fig


def _page(ev: Evaluation, title: str, extra: dict[str, Any], confidence: Confidence | None = None) -> str:
    esc = html.escape
    ranking = _table(["", *(f"@{k}" for k in ev.ks)],
                     [[name, *(ev.metrics[f"{name}@{k}"] for k in ev.ks)] for name in ("P", "nDCG", "PSP", "R")])
    sets = _table([f"score ≥ {ev.threshold:g}", "precision", "recall", "F1"],
                  [[f"{avg} ({ev.macro_labels:,} labels)" if avg == "macro" else avg,
                    *(ev.metrics[f"{avg}_{m}"] for m in ("precision", "recall", "F1"))] for avg in ("micro", "macro")])
    bands = _table(["frequency", "labels", "gold", *(f"R@{k}" for k in ev.ks), *(f"P@{k} share" for k in ev.ks)],
                   [[b.name, f"{b.n_labels:,}", f"{b.gold:,}", *b.recall.values(), *b.precision.values()]
                    for b in ev.bands])
    settings = {"threshold": f"{ev.threshold:g}", "ks": ", ".join(map(str, ev.ks)), "propensities and bands": ev.note,
                **extra}
    where = "training data" if ev.counts_from == "train" else "gold labels of these documents"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title><style>{_CSS}</style></head>
<body>
<h1>{esc(title)}</h1>
<p class="sub">{ev.n_docs:,} documents · {ev.n_labels:,} labels · {ev.docs_without_gold:,} documents without gold
labels · {ev.docs_without_suggestion:,} without any suggestion · {ev.mean_set_size:.2f} suggestions per document
with score ≥ {ev.threshold:g}</p>
<h2>Metrics (%)</h2>
<div class="tables">{ranking}{sets}</div>
<p class="hint">P, nDCG, PSP (propensity-scored precision) and R (recall) over the top k suggestions;
the set metrics count every suggestion scoring at least the threshold.</p>
<h2>By label frequency in the {where}</h2>
{_img(_band_plot(ev), "recall at k by label-frequency band")}
{bands}
<p class="hint">R@k: share of the band's gold labels found in the top k. P@k share: the band's part of P@k
(the bands add up to P@k).</p>
<h2>Confidence</h2>
{_img(_top1_plot(ev), "top-1 score, right versus wrong")}
{_img(_topk_plot(ev), "all suggestion scores")}
<h2>Probabilities and label sets</h2>
{_probabilities(confidence)}
<h2>Settings</h2>
{_table(["setting", "value"], [[str(k), str(v)] for k, v in settings.items()], align_right=False)}
</body></html>
"""


def _table(header: list[str], rows: list[list[Any]], *, align_right: bool = True) -> str:
    def cell(v: Any) -> str:
        return "–" if v is None else f"{v:.2f}" if isinstance(v, float) else html.escape(str(v))

    style = "" if align_right else ' style="text-align:left"'
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td{style}>{cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _img(fig: Figure, alt: str) -> str:
    buffer = io.BytesIO()
    FigureCanvasAgg(fig).print_png(buffer)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'


def _figure() -> tuple[Figure, Any]:
    fig = Figure(figsize=(8, 3.4), dpi=110, layout="constrained")
    ax = fig.add_subplot()
    ax.spines[["top", "right"]].set_visible(False)
    return fig, ax


def _band_plot(ev: Evaluation) -> Figure:
    fig, ax = _figure()
    x, width = np.arange(len(ev.bands)), 0.8 / len(ev.ks)
    for i, k in enumerate(ev.ks):
        heights = [b.recall[f"R@{k}"] or 0.0 for b in ev.bands]
        ax.bar(x + (i - (len(ev.ks) - 1) / 2) * width, heights, width, label=f"R@{k}",
               color=_ALL, alpha=0.35 + 0.65 * (i + 1) / len(ev.ks))
    ax.set_xticks(x, [f"{b.name}\n{b.n_labels:,} labels\n{b.gold:,} gold" if b.gold else f"{b.name}\n"
                      f"{b.n_labels:,} labels\nno gold" for b in ev.bands], fontsize=8)
    ax.set_ylim(0, 100)
    ax.set_ylabel("recall (%)")
    ax.set_xlabel(f"label frequency in the {'training data' if ev.counts_from == 'train' else 'gold labels'}")
    ax.legend(frameon=False, ncols=len(ev.ks), loc="upper left")
    return fig


def _top1_plot(ev: Evaluation) -> Figure:
    fig, ax = _figure()
    h = ev.histograms
    if h.edges:
        for counts, color, what in ((h.top1_right, _RIGHT, "right"), (h.top1_wrong, _WRONG, "wrong")):
            ax.stairs(counts, h.edges, fill=True, alpha=0.25, color=color)
            ax.stairs(counts, h.edges, color=color, linewidth=1.6,
                      label=f"top-1 {what} ({sum(counts):,} documents)")
        _threshold_line(ax, ev.threshold, h.edges)
        ax.legend(frameon=False)
    else:
        _no_data(ax)
    ax.set_xlabel("score of the top-1 suggestion")
    ax.set_ylabel("documents")
    return fig


def _topk_plot(ev: Evaluation) -> Figure:
    fig, ax = _figure()
    h = ev.histograms
    if h.edges:
        ax.stairs(h.topk, h.edges, fill=True, alpha=0.6, color=_ALL, label=f"all suggestions ({sum(h.topk):,})")
        _threshold_line(ax, ev.threshold, h.edges)
        ax.legend(frameon=False)
    else:
        _no_data(ax)
    ax.set_xlabel("score of any suggestion")
    ax.set_ylabel("suggestions")
    return fig


def _threshold_line(ax: Any, threshold: float, edges: tuple[float, ...]) -> None:
    if edges[0] <= threshold <= edges[-1]:
        ax.axvline(threshold, color="#222", linestyle="--", linewidth=1, label=f"threshold {threshold:g}")


def _no_data(ax: Any) -> None:
    ax.text(0.5, 0.5, "no suggestions", ha="center", va="center", transform=ax.transAxes, color="#666")
    ax.set_yticks([])
