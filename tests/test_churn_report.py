"""The backtest report: one self-contained HTML page, drawn from a small synthetic backtest."""

from __future__ import annotations

import dataclasses
import re
from datetime import date

import numpy as np
import pandas as pd
import pytest

from tenure.churn.backtest import Backtest
from tenure.churn.guard import Flag, Guarded
from tenure.churn.metrics import quality
from tenure.churn.report import fmt, html, lead_days

NAMES = ["health score", "baseline", "logistic", "boosting", "time-to-churn"]
PLOTS = ["roc", "pr", "reliability", "lift", "lead"]
HORIZON = 90
DAYS = [20_000, 20_030, 20_060, 20_090]  # day numbers of the four test snapshots
NASTY = 'plan=<b>"Pro" & Co</b>'  # an input name full of HTML


def synthetic(names: list[str] = NAMES, seed: int = 7) -> Backtest:
    """80 accounts on each of four snapshots; about one in six churns after the last snapshot."""
    rng = np.random.default_rng(seed)
    accounts = np.array([f"A{i:03d}" for i in range(80)])
    churns = rng.random(len(accounts)) < 0.17
    event = np.where(churns, DAYS[-1] + 1 + rng.integers(0, 120, len(accounts)), np.nan)
    frame = pd.DataFrame({
        "account_id": np.tile(accounts, len(DAYS)),
        "day": np.repeat(np.array(DAYS, dtype=float), len(accounts)),
        "event_day": np.tile(event, len(DAYS)),
        "segment": np.tile(np.where(np.arange(len(accounts)) % 2, "smb", "enterprise"), len(DAYS)),
    })  # fmt: skip
    ahead = frame["event_day"] - frame["day"]
    frame["label"] = ((ahead > 0) & (ahead <= HORIZON)).astype(int)
    for strength, name in zip([1.5, 0.2, 2.0, 2.5, 1.8], names, strict=True):
        score = strength * frame["label"] + rng.normal(0.0, 1.0, len(frame)) - 2.5
        frame[name] = 1.0 / (1.0 + np.exp(-score))
    results = [
        quality(name, frame["label"].to_numpy(dtype=int), frame[name].to_numpy(dtype=float),
                frame["account_id"].to_numpy(), frame["day"].to_numpy(dtype=float),
                frame["event_day"].to_numpy(dtype=float), HORIZON)
        for name in names
    ]  # fmt: skip
    flag = Flag(
        NASTY, "current only", "known only as it is now; AUC alone 0.97 (> 0.95)", False, 0.97
    )
    return Backtest(
        horizon=HORIZON, outcome="churn", data_end=date(2025, 3, 31), health_model="demo v1",
        folds=[date(2024, 10, 1), date(2024, 10, 31), date(2024, 11, 30), date(2024, 12, 30)],
        results=results, guard=Guarded(["logins_30d", "seats_used"], [flag]),
        predictions=frame, notes=[f"{flag.input} left out: {flag.reason} ({flag.evidence})"],
    )  # fmt: skip


@pytest.fixture(scope="module")
def backtest() -> Backtest:
    return synthetic()


@pytest.fixture(scope="module")
def page(backtest: Backtest) -> str:
    return html(backtest)


def section(page: str, tag: str, id_: str) -> str:
    """The element ``<tag id="id_">`` of ``page``, as text."""
    found = re.search(rf'<{tag} id="{id_}">.*?</{tag}>', page, re.DOTALL)
    assert found, f"no <{tag} id={id_!r}> in the report"
    return found.group(0)


def test_the_title_names_the_outcome_horizon_data_end_and_health_model(page: str) -> None:
    title = re.search(r"<title>(.*?)</title>", page, re.DOTALL)
    assert title is not None
    for part in ("churn", "90 days", "2025-03-31", "demo v1"):
        assert part in title.group(1)
    assert "<h1>Backtest: churn within 90 days</h1>" in page


def test_every_contender_appears_side_by_side_with_its_figures(
    page: str, backtest: Backtest
) -> None:
    table = section(page, "table", "contenders")
    for q in backtest.results:
        assert f'<th class="n">{q.name}</th>' in table
        assert q.auc is not None and fmt(q.auc) in table
        assert f"{q.auc:.3f}" in table
    for label in ("AUC", "PR-AUC", "Brier", "ECE", "Lift, top decile", "Median lead", "Caught"):
        assert f"<th>{label}" in table
    assert table.count('class="meaning"') == 9  # every metric explained in one line


def test_the_best_figure_of_a_row_is_marked(page: str, backtest: Backtest) -> None:
    auc_row = next(r for r in section(page, "table", "contenders").split("<tr>") if "<th>AUC" in r)
    best = max(backtest.results, key=lambda q: q.auc or 0.0)
    assert f'<td class="n best">{fmt(best.auc)}</td>' in auc_row
    assert auc_row.count(" best") == 1


def test_the_five_plots_are_inline_svg(page: str) -> None:
    assert page.count("<svg ") == len(PLOTS)
    for key in PLOTS:
        assert re.search(rf'<figure id="plot-{key}">\s*<svg ', page), key
    assert "<?xml" not in page and "<!DOCTYPE svg" not in page  # the SVG prologue is stripped
    assert "<metadata>" not in page  # no creator or date stamped in the plots


def test_the_plots_name_every_contender(page: str, backtest: Backtest) -> None:
    roc = section(page, "figure", "plot-roc")
    for q in backtest.results:
        assert f"{q.name} (AUC {fmt(q.auc)})" in roc


def test_reliability_tables_list_every_bin(page: str, backtest: Backtest) -> None:
    assert page.count('<table class="reliability">') == len(backtest.results)
    bins = sum(len(q.reliability) for q in backtest.results)
    assert len(re.findall(r"<tr><td>\d\.\d–\d\.\d</td>", page)) == bins


def test_the_leakage_flag_is_listed_with_its_reason_and_evidence(page: str) -> None:
    guard = section(page, "table", "leakage")
    assert "<td>current only</td>" in guard
    assert "AUC alone 0.97 (&gt; 0.95)" in guard
    assert "left out" in guard


def test_no_flag_says_so() -> None:
    clean = dataclasses.replace(synthetic(), guard=Guarded(["logins_30d"], []), notes=[])
    page = html(clean)
    assert "The leakage guard raised no flag" in page
    assert '<p id="notes">None.</p>' in page


def test_notes_and_test_snapshots_are_listed(page: str, backtest: Backtest) -> None:
    assert "left out: current only" in section(page, "ul", "notes")
    folds = section(page, "ul", "folds")
    listed = re.findall(r"<li>(.*?)</li>", folds)
    assert listed == [d.isoformat() for d in backtest.folds]


def test_the_page_fetches_nothing(page: str) -> None:
    for tag in ("<script", "<link", "<iframe", "<img", "@import", " src="):
        assert tag not in page.lower(), tag
    assert set(re.findall(r"url\((.)", page)) <= {"#"}  # clip paths within the same SVG
    assert set(re.findall(r'href="(.)', page)) <= {"#"}
    urls = set(re.findall(r"https?://[^\s\"'<>]+", page))
    assert urls <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}  # namespaces


def test_html_in_names_is_escaped(page: str) -> None:
    assert "plan=&lt;b&gt;&#34;Pro&#34; &amp; Co&lt;/b&gt;" in page
    assert NASTY not in page and '<b>"Pro"' not in page


def test_html_in_a_contender_name_is_escaped_in_the_table_and_the_plots() -> None:
    names = ["health score", "baseline", "a<b & c", "boosting", "time-to-churn"]
    page = html(synthetic(names))
    assert "a<b" not in page
    assert "a&lt;b &amp; c" in section(page, "table", "contenders")
    assert "a&lt;b &amp; c (AUC" in section(page, "figure", "plot-roc")


def test_the_same_backtest_gives_the_same_page(page: str, backtest: Backtest) -> None:
    assert html(backtest) == page
    assert html(synthetic()) == page  # a backtest equal in value, built afresh


def test_lead_days_agree_with_the_metrics(backtest: Backtest) -> None:
    for q in backtest.results:
        days = lead_days(backtest.predictions, q.name, HORIZON)
        assert all(0 < d <= HORIZON for d in days)
        if q.median_lead_days is None:
            assert days == []
        else:
            assert float(np.median(days)) == q.median_lead_days
    assert lead_days(backtest.predictions, "no such contender", HORIZON) == []


@pytest.mark.parametrize(
    ("value", "kind", "text"),
    [(None, "score", "—"), (float("nan"), "score", "—"), (0.98765, "score", "0.988"),
     (5.6956, "lift", "5.70×"), (27.5, "days", "27.5"), (43.0, "days", "43"),
     (0.9583, "share", "96%"), (1525, "count", "1,525")],
)  # fmt: skip
def test_figures_are_printed_plainly(value: float | None, kind: str, text: str) -> None:
    assert fmt(value, kind) == text
