"""Server-rendered HTML: templates under ``console/templates`` filled with escaped values.

Every value is HTML-escaped unless it is :class:`Html` (markup this module built from
escaped parts), so an alert field can never inject markup. No page needs JavaScript.
"""

from __future__ import annotations

import html
from datetime import datetime
from functools import cache
from pathlib import Path
from string import Template
from typing import Any
from zoneinfo import ZoneInfo

from console.store import STATUSES, AlertRow, Decision, TimelineEntry, User

TEMPLATES = Path(__file__).parent / "templates"
STATUS_TEXT = {"new": "new", "fraud": "confirmed fraud", "genuine": "genuine"}


class Html(str):
    """Markup that is already safe (built from escaped parts)."""


def esc(value: Any) -> Html:
    return value if isinstance(value, Html) else Html(html.escape("" if value is None else str(value)))


def join(parts: list[Html] | list[str], sep: str = "") -> Html:
    return Html(sep.join(esc(p) for p in parts))


@cache
def _template(name: str) -> Template:
    return Template((TEMPLATES / name).read_text(encoding="utf-8"))


def render(name: str, **values: Any) -> Html:
    return Html(_template(name).substitute({k: esc(v) for k, v in values.items()}))


def fmt_time(ts: float, tz: ZoneInfo) -> str:
    return datetime.fromtimestamp(ts, tz).strftime("%Y-%m-%d %H:%M:%S")


def fmt_amount(amount: float | None) -> str:
    return "—" if amount is None else f"{amount:,.2f}"


def fmt_number(value: float) -> str:
    """Rounded for people: integers as integers, else 2 significant decimals."""
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}" if abs(value) >= 1 else f"{value:.3g}"


def _rate(value: float) -> str:
    return f"{value:.2g}" if value < 1 else f"{value:,.1f}"


def page(title: str, body: Html, user: User | None = None, csrf: str = "", flash: str = "", error: bool = False) -> str:
    nav = Html("")
    if user is not None:
        nav = Html(
            f'<nav><a href="/">Queue</a><span>{esc(user.name)} · {esc(user.role)}</span>'
            f'<form method="post" action="/logout"><input type="hidden" name="csrf" value="{esc(csrf)}">'
            '<button type="submit">Sign out</button></form></nav>'
        )
    note = Html(f'<p class="flash{" error" if error else ""}">{esc(flash)}</p>') if flash else Html("")
    return render("layout.html", title=title, nav=nav, flash=note, body=body)


def login_body(csrf: str, next_url: str, message: str, no_users: bool) -> Html:
    hint = (
        Html(
            '<p class="hint">No users yet. Add one on the console\'s machine:<br>'
            "<code>kuntur console --add-user NAME --role investigator</code></p>"
        )
        if no_users
        else Html("")
    )
    msg = Html(f'<p class="flash error">{esc(message)}</p>') if message else Html("")
    return render("login.html", csrf=csrf, next=next_url, message=msg, hint=hint)


def _options(values: list[str], selected: str | None, labels: dict[str, str] | None = None) -> Html:
    out = ['<option value="">all</option>']
    for v in values:
        sel = " selected" if v == selected else ""
        out.append(f'<option value="{esc(v)}"{sel}>{esc((labels or {}).get(v, v) or "(none)")}</option>')
    return Html("".join(out))


def _top_reason(alert: AlertRow) -> str:
    return alert.reasons[0]["text"] if alert.reasons else ""


def queue_body(
    day: str,
    day_label: str,
    days: list[tuple[str, int]],
    rows: list[AlertRow],
    budget: int,
    totals: dict[str, int],
    filters: dict[str, Any],
    institutions: list[str],
    rules: list[str],
    tz: ZoneInfo,
) -> Html:
    day_links = join(
        [Html(f'<a href="/?day={esc(d)}">{"<strong>" if d == day else ""}{esc(d)} ({n})'
              f'{"</strong>" if d == day else ""}</a>') for d, n in days[:14]],
        " · ",
    ) or Html("none yet")  # fmt: skip
    sections = []
    by_institution: dict[str, list[AlertRow]] = {}
    for row in rows:
        by_institution.setdefault(row.institution_id, []).append(row)
    for institution, alerts in by_institution.items():
        total = totals.get(institution, len(alerts))
        outside = max(0, total - budget)
        trs, line_drawn = [], False
        for a in alerts:
            inside = a.rank <= budget
            if not inside and not line_drawn:
                trs.append(f'<tr class="budget-line"><td colspan="9">outside the budget of {budget}</td></tr>')
                line_drawn = True
            trs.append(
                f'<tr class="{"inside" if inside else "outside"}">'
                f'<td class="num">{a.rank}</td><td class="num">{a.score:.3f}</td>'
                f'<td>{esc(fmt_time(a.event_time, tz))}</td><td class="num">{esc(fmt_amount(a.amount))}</td>'
                f"<td>{esc(a.merchant_id or '—')}</td><td>{esc(', '.join(a.rules) or '—')}</td>"
                f"<td>{esc(_top_reason(a))}</td>"
                f'<td><span class="status status-{esc(a.status)}">{esc(STATUS_TEXT[a.status])}</span></td>'
                f'<td><a href="/alerts/{esc(a.alert_id)}">open</a></td></tr>'
            )
        sections.append(
            f"<h2>{esc(institution or '(no institution)')} <small>{total} alert(s) today, budget {budget}"
            f"{f': {outside} outside it' if outside else ''}; {len(alerts)} shown</small></h2>"
            '<table class="queue"><thead><tr><th>rank</th><th>score</th><th>time</th><th>amount</th>'
            "<th>merchant</th><th>rules</th><th>top reason</th><th>status</th><th></th></tr></thead>"
            f"<tbody>{''.join(trs)}</tbody></table>"
        )
    if not sections:
        sections.append('<p class="meta">No alerts match.</p>')
    return render(
        "queue.html",
        day=day,
        day_label=day_label,
        budget=budget,
        days=day_links,
        institution_options=_options(institutions, filters.get("institution")),
        rule_options=_options(rules, filters.get("rule")),
        min_score="" if filters.get("min_score") is None else filters["min_score"],
        status_options=_options(list(STATUSES), filters.get("status"), STATUS_TEXT),
        sections=Html("".join(sections)),
    )


def usual_rows(alert: AlertRow) -> list[tuple[str, str, str]]:
    """(what, this transaction, the account's usual) from the feature snapshot."""
    f, out = alert.features, []
    ratio = f.get("account_amount_to_mean_30d")
    if alert.amount is not None and ratio:  # the ratio is to the mean *before* this transaction
        out.append(("amount", f"{fmt_amount(alert.amount)} ({ratio:,.1f}× the average before it)",
                    f"{fmt_amount(alert.amount / ratio)} on average over the previous 30 days"))  # fmt: skip
    elif alert.amount is not None and f.get("account_amount_mean_30d"):
        out.append(("amount", fmt_amount(alert.amount),
                    f"{fmt_amount(f['account_amount_mean_30d'])} average in 30 days, this one included"))  # fmt: skip
    if "account_tx_count_1h" in f and "account_tx_count_30d" in f:
        out.append(("transactions in the last hour", fmt_number(f["account_tx_count_1h"]),
                    f"{_rate(f['account_tx_count_30d'] / 720)} per hour over 30 days"))  # fmt: skip
    if "account_tx_count_24h" in f and "account_tx_count_30d" in f:
        out.append(("transactions in the last 24 h", fmt_number(f["account_tx_count_24h"]),
                    f"{_rate(f['account_tx_count_30d'] / 30)} per day over 30 days"))  # fmt: skip
    if "account_amount_max_30d" in f and alert.amount is not None:
        out.append(
            ("largest amount", fmt_amount(alert.amount), f"{fmt_amount(f['account_amount_max_30d'])} in 30 days")
        )
    if "account_geo_distance_km" in f:
        out.append(("distance from the previous transaction", f"{fmt_number(f['account_geo_distance_km'])} km", "—"))
    for name, what in (("account_new_device", "device"), ("account_new_merchant", "merchant"),
                       ("account_new_ip", "IP address")):  # fmt: skip
        if name in f:
            out.append((what, "first time for this account" if f[name] >= 0.5 else "seen before", "—"))
    return out


def _timeline(entries: list[TimelineEntry], current: AlertRow, tz: ZoneInfo) -> Html:
    items = []
    for e in entries:
        this = e.transaction_id == current.transaction_id
        cls = "this" if this else ("alerted" if e.alert_id else "")
        what = f"score {e.score:.3f}"
        if e.amount is not None:
            what += f" · {fmt_amount(e.amount)}"
        if e.merchant_id:
            what += f" · merchant {e.merchant_id}"
        link = esc(e.transaction_id)
        if e.alert_id and not this:
            link = Html(f'<a href="/alerts/{esc(e.alert_id)}">{esc(e.transaction_id)}</a>')
        status = f" · {STATUS_TEXT.get(e.status or '', '')}" if e.alert_id else " · scored, no alert"
        marker = " ◀ this alert" if this else ""
        items.append(
            f'<li class="{cls}">{esc(fmt_time(e.event_time, tz))} — {link} · {esc(what + status + marker)}</li>'
        )
    return Html("".join(items))


def _history(decisions: list[Decision], tz: ZoneInfo) -> Html:
    if not decisions:
        return Html('<p class="meta">No decision yet.</p>')
    rows = []
    for d in decisions:
        label = f"sent {fmt_time(d.delivered_at, tz)}" if d.delivered_at else "pending (will be re-sent)"
        rows.append(
            f"<tr><td>#{d.decision_id}</td><td>{esc(fmt_time(d.decided_at, tz))}</td><td>{esc(d.decided_by)}"
            f" ({esc(d.role)})</td><td>{esc(STATUS_TEXT[d.outcome])}</td>"
            f"<td>{esc('corrects #' + str(d.corrects) if d.corrects else '')}</td><td>{esc(d.note)}</td>"
            f"<td>{esc(label)}</td></tr>"
        )
    return Html(
        '<table class="history"><thead><tr><th>#</th><th>when</th><th>who</th><th>decision</th><th></th>'
        f"<th>note</th><th>label</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _weight(reason: dict[str, Any]) -> str:
    """The model's contribution, or where a reason without one comes from (the account's
    history: :mod:`stream.pipeline.reasons`; the model's contributions are always > 0)."""
    c = reason.get("contribution") or 0.0
    return f"contribution {c:+.3f}" if c > 0 else "from the account's history, not the model"


def alert_body(
    alert: AlertRow,
    timeline: list[TimelineEntry],
    decisions: list[Decision],
    user: User,
    csrf: str,
    descriptions: dict[str, str],
    tz: ZoneInfo,
) -> Html:
    reasons = join([
        Html(f'<li>{esc(r["text"])} <span class="why">({esc(r["feature"])}, {esc(_weight(r))})</span></li>')
        for r in alert.reasons
    ]) or Html("<li>No reason recorded with this alert.</li>")  # fmt: skip
    usual = usual_rows(alert)
    usual_html = (
        Html(
            '<table class="usual"><thead><tr><th></th><th>this transaction</th><th>the account\'s usual</th></tr>'
            "</thead><tbody>"
            + "".join(f"<tr><td>{esc(a)}</td><td>{esc(b)}</td><td>{esc(c)}</td></tr>" for a, b, c in usual)
            + "</tbody></table>"
        )
        if usual
        else Html('<p class="meta">No account history in the snapshot.</p>')
    )
    if user.role == "investigator":
        prompt = (
            "Correct the decision: a correction is a new, audited decision sent as a new label."
            if decisions
            else "Decide: the decision is recorded with your name and sent to the model as a label."
        )
        form = render("decide.html", alert_id=alert.alert_id, csrf=csrf, prompt=prompt)
    else:
        form = Html('<p class="meta">Viewers read alerts; only investigators decide.</p>')
    features = join([
        Html(f'<tr><td><code>{esc(k)}</code></td><td class="num">{esc(fmt_number(v))}</td>'
             f"<td>{esc(descriptions.get(k, ''))}</td></tr>")
        for k, v in alert.features.items()
    ])  # fmt: skip
    return render(
        "alert.html",
        day=alert.day,
        alert_id=alert.alert_id,
        status=alert.status,
        status_text=STATUS_TEXT[alert.status],
        score=f"{alert.score:.3f}",
        threshold="—" if alert.threshold is None else f"{alert.threshold:.3f}",
        model_version=alert.model_version or "—",
        rules=", ".join(alert.rules) or "none",
        transaction_id=alert.transaction_id,
        event_time=fmt_time(alert.event_time, tz) + f" ({tz.key})",
        amount=fmt_amount(alert.amount),
        merchant=alert.merchant_id or "—",
        account_id=alert.account_id,
        institution=alert.institution_id or "—",
        reasons=reasons,
        usual=usual_html,
        timeline=_timeline(timeline, alert, tz),
        decision_form=form,
        history=_history(decisions, tz),
        n_features=len(alert.features),
        features=features,
    )
