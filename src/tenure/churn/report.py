"""The backtest report: one self-contained HTML page of every contender's out-of-time figures.

Nothing is fetched when the page is opened: the style sheet is inline and every plot is an inline
SVG drawn with matplotlib (on a bare :class:`~matplotlib.figure.Figure`, never pyplot's global
state). SVG ids are salted with a fixed string and text stays text, so the same backtest always
gives the same page, byte for byte.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from jinja2 import Environment
from markupsafe import Markup
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from matplotlib.typing import RcKeyType
from sklearn.metrics import precision_recall_curve, roc_curve

from tenure.churn.backtest import Backtest
from tenure.churn.metrics import Quality, flags, leads

STYLE: dict[RcKeyType, Any] = {
    "svg.hashsalt": "tenure-backtest-report",  # stable ids: the same backtest, the same page
    "svg.fonttype": "none",  # text as <text>, not glyph paths
    "text.parse_math": False,  # a "$" in a name is a dollar sign
    "font.size": 9.0,
}
NO_METADATA: dict[str, Any] = {"Creator": None, "Date": None, "Format": None, "Type": None}
SIZE = (6.4, 4.0)  # inches
LEAD_BINS = 6  # bars of the lead time histogram
MAX_POINTS = 500  # a curve is thinned to at most this many points to keep the page small
Draw = Callable[[Axes, Backtest], None]


@dataclass(frozen=True)
class Metric:
    """One row of the side-by-side table."""

    key: str  # attribute of Quality
    label: str
    kind: str  # how to print it: "score", "lift", "days", "share" or "count"
    better: int  # 1: higher is better, -1: lower is better, 0: neither
    meaning: str


METRICS = [
    Metric("auc", "AUC", "score", 1, "Chance a random account that came to the outcome was ranked "
           "riskier than one that did not: 0.5 is a coin toss, 1 is perfect."),
    Metric("pr_auc", "PR-AUC", "score", 1, "Average precision down the risk ranking: how pure the "
           "riskiest accounts are (a random ranking scores the base rate)."),
    Metric("brier", "Brier", "score", -1, "Mean squared gap between the predicted probability and "
           "what happened (0 or 1); lower is better."),
    Metric("ece", "ECE", "score", -1, "Expected calibration error: the mean gap between predicted "
           "and observed rates across probability bins, weighted by accounts; lower is better."),
    Metric("lift_top_decile", "Lift, top decile", "lift", 1, "Outcome rate among the riskiest "
           "tenth of accounts over the overall rate: 1× is no better than picking at random."),
    Metric("median_lead_days", "Median lead (days)", "days", 1, "Median days from the first "
           "snapshot that flagged an account (riskiest tenth) to its outcome."),
    Metric("caught", "Caught", "share", 1, "Share of the outcomes flagged at least once within "
           "the horizon before they came."),
    Metric("rows", "Rows", "count", 0, "Test predictions pooled over every test snapshot."),
    Metric("positives", "Positives", "count", 0, "Test rows whose outcome came within the horizon."),
]  # fmt: skip


def html(result: Backtest) -> str:
    """The backtest as one self-contained HTML page."""
    env = Environment(autoescape=True)
    env.filters["fmt"] = fmt
    return env.from_string(TEMPLATE).render(
        r=result,
        table=[(m, _cells(m, result.results)) for m in METRICS],
        plots=[(key, title, caption, _svg(draw, result)) for key, title, caption, draw in PLOTS],
        rows=len(result.predictions),
    )


def fmt(value: float | None, kind: str = "score") -> str:
    """A figure as printed in the report; a dash when there is none."""
    if value is None or not np.isfinite(value):
        return "—"
    if kind == "lift":
        return f"{value:.2f}×"
    if kind == "days":
        return f"{value:.0f}" if value == round(value) else f"{value:.1f}"
    if kind == "share":
        return f"{value:.0%}"
    if kind == "count":
        return f"{int(value):,}"
    return f"{value:.3f}"


def _cells(metric: Metric, results: list[Quality]) -> list[tuple[str, bool]]:
    """Each contender's figure for ``metric``, and whether it is the best of them."""
    values = [getattr(q, metric.key) for q in results]
    known = [v * metric.better for v in values if v is not None and np.isfinite(v)]
    best = max(known) if metric.better and len(known) > 1 else None
    return [(fmt(v, metric.kind), best is not None and v is not None and v * metric.better == best)
            for v in values]  # fmt: skip


def _svg(draw: Draw, result: Backtest) -> Markup:
    """``draw`` on a fresh figure, as an inline <svg> element."""
    buffer = io.StringIO()
    with matplotlib.rc_context(STYLE):
        figure = Figure(figsize=SIZE, layout="constrained")
        draw(figure.add_subplot(), result)
        figure.savefig(buffer, format="svg", metadata=NO_METADATA)
    text = buffer.getvalue()
    return Markup(text[text.index("<svg") :])


def _scored(result: Backtest) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """Each contender's name, labels and probabilities, where both outcomes occur."""
    for q in result.results:
        if q.name not in result.predictions:
            continue
        p = result.predictions[q.name].to_numpy(dtype=float)
        y = result.predictions["label"].to_numpy(dtype=int)
        ok = np.isfinite(p)
        if len(np.unique(y[ok])) == 2:
            yield q.name, y[ok], p[ok]


def _thin(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if len(x) <= MAX_POINTS:
        return x, y
    keep = np.unique(np.linspace(0, len(x) - 1, MAX_POINTS).round().astype(int))
    return x[keep], y[keep]


def _roc(ax: Axes, result: Backtest) -> None:
    for name, y, p in _scored(result):
        fpr, tpr, _ = roc_curve(y, p)
        ax.plot(*_thin(fpr, tpr), label=f"{name} (AUC {fmt(result.result(name).auc)})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1, label="chance")
    _finish(ax, "False positive rate", "True positive rate", unit=True)


def _pr(ax: Axes, result: Backtest) -> None:
    for name, y, p in _scored(result):
        precision, recall, _ = precision_recall_curve(y, p)
        ax.plot(*_thin(recall, precision), drawstyle="steps-post",
                label=f"{name} (PR-AUC {fmt(result.result(name).pr_auc)})")  # fmt: skip
    rate = float(result.predictions["label"].mean()) if len(result.predictions) else 0.0
    ax.axhline(rate, color="grey", linestyle=":", linewidth=1, label=f"base rate {rate:.1%}")
    _finish(ax, "Recall", "Precision", unit=True)


def _reliability(ax: Axes, result: Backtest) -> None:
    for q in result.results:
        if q.reliability:
            ax.plot([b.predicted for b in q.reliability], [b.observed for b in q.reliability],
                    marker="o", markersize=4, label=q.name)  # fmt: skip
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1, label="perfect calibration")
    _finish(ax, "Predicted probability (bin mean)", "Observed rate", unit=True)


def _lift(ax: Axes, result: Backtest) -> None:
    width = 0.8 / max(len(result.results), 1)
    for i, q in enumerate(result.results):
        x = np.arange(1, len(q.lift) + 1) + (i - (len(result.results) - 1) / 2) * width
        ax.bar(x, q.lift, width=width, label=q.name)
    ax.axhline(1.0, color="grey", linestyle=":", linewidth=1, label="random")
    ax.set_xticks(range(1, 11))
    _finish(ax, "Decile of risk (1 = riskiest tenth)", "Lift (outcome rate / overall rate)")


def _lead(ax: Axes, result: Backtest) -> None:
    edges = np.linspace(0, result.horizon, LEAD_BINS + 1)
    width = 0.8 / max(len(result.results), 1)
    for i, q in enumerate(result.results):
        counts, _ = np.histogram(lead_days(result.predictions, q.name, result.horizon), edges)
        x = np.arange(LEAD_BINS) + (i - (len(result.results) - 1) / 2) * width
        ax.bar(x, counts, width=width,
               label=f"{q.name} (median {fmt(q.median_lead_days, 'days')} days)")  # fmt: skip
    ax.set_xticks(range(LEAD_BINS), [f"{a:.0f}–{b:.0f}" for a, b in itertools.pairwise(edges)])
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    _finish(ax, "Days from the first flag to the outcome", "Outcomes caught")


def _finish(ax: Axes, xlabel: str, ylabel: str, unit: bool = False) -> None:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if unit:
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7.5, frameon=False)


def lead_days(predictions: pd.DataFrame, name: str, horizon: int) -> list[float]:
    """Per outcome caught by ``name``: days from the first snapshot that flagged the account
    (within ``horizon`` before the outcome) to the outcome (``metrics.leads``)."""
    if name not in predictions or predictions.empty:
        return []
    days = predictions["day"].to_numpy(dtype=float)
    flagged = flags(days, predictions[name].to_numpy(dtype=float))
    return leads(predictions["account_id"].to_numpy(), days,
                 predictions["event_day"].to_numpy(dtype=float), flagged, horizon)[0]  # fmt: skip


PLOTS: list[tuple[str, str, str, Draw]] = [
    ("roc", "ROC curves", "True against false positive rate as the risk threshold falls.", _roc),
    ("pr", "Precision–recall curves", "Precision among the accounts flagged against the share "
     "of outcomes flagged, as the threshold falls.", _pr),
    ("reliability", "Reliability diagram", "Mean predicted probability against the observed "
     "rate in each tenth of the probability range; on the diagonal is well calibrated.",
     _reliability),
    ("lift", "Lift by decile", "Outcome rate in each tenth of accounts by risk over the overall "
     "rate.", _lift),
    ("lead", "Lead time", "Days between the first snapshot that flagged an account (riskiest "
     "tenth of its snapshot) and its outcome.", _lead),
]  # fmt: skip

TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Backtest: {{ r.outcome }} within {{ r.horizon }} days, data to {{ r.data_end }}
(health model {{ r.health_model }})</title>
<style>
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d2433;
       max-width: 1180px; margin: 2rem auto; padding: 0 1.25rem; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; }
h2 { font-size: 1.2rem; margin-top: 2.2rem; border-bottom: 1px solid #d8dde6; padding-bottom: .3rem; }
h3 { font-size: 1rem; margin: 1rem 0 .4rem; }
.sub { color: #5a6478; margin-top: 0; }
table { border-collapse: collapse; margin: .5rem 0; }
th, td { padding: .3rem .6rem; border-bottom: 1px solid #e6e9ef; text-align: left; vertical-align: top; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.best { font-weight: 700; background: #eef6ee; }
td.meaning { color: #5a6478; font-size: .85rem; max-width: 26rem; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(500px, 1fr)); gap: 1rem; }
.rel { display: grid; grid-template-columns: repeat(auto-fill, minmax(330px, 1fr)); gap: 1rem; }
figure { margin: 0; border: 1px solid #e6e9ef; border-radius: 6px; padding: .6rem; }
figure svg { width: 100%; height: auto; }
figcaption { font-size: .85rem; color: #5a6478; }
figcaption b { color: #1d2433; }
.kept { color: #9a5b00; font-weight: 600; }
.out { color: #2f6d2f; }
</style>
</head>
<body>
<h1>Backtest: {{ r.outcome }} within {{ r.horizon }} days</h1>
<p class="sub">Data to {{ r.data_end }} · health model {{ r.health_model }} ·
{{ r.folds | length }} test snapshot{{ "" if r.folds | length == 1 else "s" }} ·
{{ rows | fmt("count") }} out-of-time predictions · {{ r.guard.inputs | length }} inputs</p>

<h2>Contenders side by side</h2>
<p>Every figure is out of time: each test snapshot was predicted by models fitted only on
snapshots whose outcome was known by then. The best figure in each row is in bold.</p>
<table id="contenders">
<thead><tr><th>Metric</th>
{%- for q in r.results %}<th class="n">{{ q.name }}</th>{% endfor -%}
<th>What it means</th></tr></thead>
<tbody>
{%- for metric, cells in table %}
<tr><th>{{ metric.label }}</th>
{%- for text, best in cells %}<td class="n{{ ' best' if best }}">{{ text }}</td>{% endfor -%}
<td class="meaning">{{ metric.meaning }}</td></tr>
{%- endfor %}
</tbody>
</table>

<h2>Plots</h2>
<div class="grid">
{%- for key, title, caption, svg in plots %}
<figure id="plot-{{ key }}">
{{ svg }}
<figcaption><b>{{ title }}.</b> {{ caption }}</figcaption>
</figure>
{%- endfor %}
</div>

<h2>Reliability tables</h2>
<p>Predictions grouped into tenths of the probability range: how many accounts fell in each, the
mean probability predicted for them and the share that came to the outcome.</p>
<div class="rel">
{%- for q in r.results %}
<div>
<h3>{{ q.name }}</h3>
{%- if q.reliability %}
<table class="reliability">
<thead><tr><th>Probability</th><th class="n">Accounts</th><th class="n">Predicted</th>
<th class="n">Observed</th></tr></thead>
<tbody>
{%- for b in q.reliability %}
<tr><td>{{ "%.1f–%.1f" | format(b.low, b.high) }}</td><td class="n">{{ b.accounts | fmt("count") }}</td>
<td class="n">{{ b.predicted | fmt }}</td><td class="n">{{ b.observed | fmt }}</td></tr>
{%- endfor %}
</tbody>
</table>
{%- else %}
<p>No predictions.</p>
{%- endif %}
</div>
{%- endfor %}
</div>

<h2>Leakage guard</h2>
{%- if r.guard.flags %}
<p>Inputs that could not have been known at the snapshot, or that rank the outcome too well to
be true. Unless kept at your request they were left out of every model.</p>
<table id="leakage">
<thead><tr><th>Input</th><th>Reason</th><th>Evidence</th><th>Kept</th></tr></thead>
<tbody>
{%- for f in r.guard.flags %}
<tr><td>{{ f.input }}</td><td>{{ f.reason }}</td><td>{{ f.evidence }}</td>
<td>{% if f.kept %}<span class="kept">kept at your request</span>{% else %}<span class="out">left out</span>{% endif %}</td></tr>
{%- endfor %}
</tbody>
</table>
{%- else %}
<p id="leakage">The leakage guard raised no flag: every candidate input was used.</p>
{%- endif %}

<h2>Notes</h2>
{%- if r.notes %}
<ul id="notes">
{%- for note in r.notes %}
<li>{{ note }}</li>
{%- endfor %}
</ul>
{%- else %}
<p id="notes">None.</p>
{%- endif %}

<h2>Test snapshots</h2>
<p>Each was predicted by models trained on the snapshots whose {{ r.horizon }}-day outcome window
had closed by then.</p>
<ul id="folds">
{%- for day in r.folds %}
<li>{{ day }}</li>
{%- endfor %}
</ul>
</body>
</html>
"""
