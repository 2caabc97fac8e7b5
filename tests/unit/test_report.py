from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from offline.backtest.metrics import daily_precision_at_k, summarize

pytest.importorskip("matplotlib")

from offline.backtest.report import ReportRun, ReportUnavailable, require_matplotlib, write_report  # noqa: E402

DAY = 86400.0


def _run(name: str, seed: int, signal: float, features: list[tuple[str, float]]) -> ReportRun:
    rng = np.random.default_rng(seed)
    n = 4000
    ts = np.sort(rng.uniform(0, 12 * DAY, n)) + 1_735_689_600.0  # 2025-01-01
    y = np.random.default_rng(0).random(n) < 0.03  # the same labels for every run
    s = np.clip(rng.random(n) * 0.8 + y * signal * rng.random(n), 0, 1)
    alert = s >= 0.7
    account = np.random.default_rng(1).integers(0, 500, n)
    summary = summarize(y, s, alert, ts, account, 25)
    daily, _ = daily_precision_at_k((ts // DAY).astype(np.int64), account, y, s, 25)
    return ReportRun(name, y, s, alert, ts, account, summary, daily, features)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[ReportRun]]:
    online = _run(
        "online <logreg> & co", 1, 0.6, [("account_amount_zscore_30d", 0.8), ("merchant_fraud_rate_7d", -0.3)]
    )
    online.summary["throughput_tx_s"] = 23456.7
    online.summary["labels"] = {"fraud": 12, "genuine": 3000}
    batch = _run("batch random-forest", 2, 0.3, [])
    path = tmp_path_factory.mktemp("report") / "report.html"
    meta = {
        "file": "history<1>.csv",
        "transactions": 4000,
        "label_rule": "labels arrive 7d after the transaction",
        "threshold": 0.5,
        "budget_k": 25,
        "columns": {"account_id": "CUSTOMER_ID"},
        "command": "kuntur evaluate history.csv --report report.html",
    }
    write_report(path, [online, batch], title="Backtest <demo>", meta=meta)
    return Path(path).read_text(encoding="utf-8"), [online, batch]


def test_report_is_one_self_contained_html_document(report: tuple[str, list[ReportRun]]) -> None:
    text, _ = report
    assert text.startswith("<!DOCTYPE html>")
    assert text.count("<html") == 1 and text.count("</html>") == 1
    assert text.count("data:image/png;base64,") >= 5
    assert "http://" not in text and "https://" not in text  # no external assets
    assert "<script" not in text


def test_report_names_runs_and_shows_table_values(report: tuple[str, list[ReportRun]]) -> None:
    text, runs = report
    assert "batch random-forest" in text
    for run in runs:
        for key in ("roc_auc", "average_precision", "precision", "recall", "precision_at_budget"):
            assert format(run.summary[key], ".4f") in text
        assert format(run.summary["alerts_per_day_mean"], ",.1f") in text
    assert "23,457" in text  # throughput
    assert "precision@25" in text
    assert "kuntur evaluate history.csv" in text
    assert text.count("data:image/png;base64,") == 6  # 2 curves, 2 over time, distributions, 1 run with features


def test_report_escapes_every_string(report: tuple[str, list[ReportRun]]) -> None:
    text, _ = report
    assert "online &lt;logreg&gt; &amp; co" in text
    assert "<logreg>" not in text
    assert "Backtest &lt;demo&gt;" in text and "<demo>" not in text
    assert "history&lt;1&gt;.csv" in text
    assert "&quot;account_id&quot;" in text  # nested meta rendered as escaped JSON


def test_report_copes_with_a_run_without_frauds(tmp_path: Path) -> None:
    run = _run("quiet", 3, 0.5, [])
    run.y = np.zeros_like(run.y)
    run.summary = summarize(run.y, run.s, run.alert, run.ts, run.account, 25)
    run.daily = []
    path = tmp_path / "r.html"
    write_report(path, [run], title="t", meta={})
    assert path.read_text(encoding="utf-8").count("data:image/png;base64,") == 5
    with pytest.raises(ValueError):
        write_report(path, [], title="t", meta={})


def test_missing_matplotlib_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    require_matplotlib()
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ReportUnavailable, match="matplotlib"):
        require_matplotlib()
    with pytest.raises(ReportUnavailable, match=r"kuntur\[eval\]"):
        write_report(tmp_path / "r.html", [_run("x", 4, 0.5, [])], title="t", meta={})


def test_report_opens_with_the_warnings_a_readable_header_and_the_breakdown(tmp_path: Path) -> None:
    from offline.backtest.breakdown import breakdown

    run = _run("online m", 5, 0.6, [])
    n = len(run.y)
    types = ["card_testing" if i % 2 else "account_takeover" for i in range(n)]
    currency = ["USD" if i % 3 == 0 else "PEN" for i in range(n)]
    fired = {"card-testing": np.arange(n) % 50 == 0}
    run.breakdown = breakdown(run.y, run.s, run.alert, run.summary["days"], 0.7, np.full(n, 10.0), currency,
                              types, fired, frozenset({"card-testing"}))
    warnings = [{"code": "auc-below-chance", "run": "online m", "message": "online m: ROC AUC 0.4 <is> below 0.5"}]
    meta = {"file": "h.csv", "transactions": 4000, "first_transaction": "2025-01-01 00:00 America/Lima",
            "test_start": "2025-01-05", "timezone": "America/Lima", "label_rule": "7d", "threshold": 0.7,
            "budget_k": 25, "columns": {"account_id": "CUSTOMER_ID"}}
    path = tmp_path / "r.html"
    write_report(path, [run], title="t", meta=meta, warnings=warnings)
    text = path.read_text(encoding="utf-8")
    assert text.index('class="warnings"') < text.index('class="head"') < text.index("<h2>Summary</h2>")
    assert "ROC AUC 0.4 &lt;is&gt; below 0.5" in text and "1 warning:" in text
    assert "<dt>test window</dt><dd>from 2025-01-05 (America/Lima time)</dd>" in text
    assert "<dt>transactions</dt><dd>4,000</dd>" in text
    assert "<summary>All run facts</summary>" in text  # the full dict, folded away
    assert "Recall per fraud typology" in text and "card_testing" in text
    assert "Expert rules — online m" in text and "<td>alerts</td>" in text
    # amounts per currency, never added across currencies
    assert text.count("<td>USD</td>") == 1 and text.count("<td>PEN</td>") == 1
    assert "Threshold trade-off — online m" in text and '<tr class="current">' in text
    assert "dashed: the budget" in text


def test_report_without_warnings_says_so(tmp_path: Path) -> None:
    path = tmp_path / "r.html"
    write_report(path, [_run("x", 6, 0.5, [])], title="t", meta={}, warnings=[])
    assert "No warnings" in path.read_text(encoding="utf-8")
