"""Reading labelled histories: column maps, validation, event-time order, label arrival."""

from __future__ import annotations

import math

import numpy as np
import orjson
import pytest

from offline.backtest.history import (
    LabelRule,
    events,
    label_rule,
    load_history,
    parse_columns,
    parse_duration,
    report_times,
)
from offline.backtest.replay import label_json, parse_speed, transaction_json
from offline.errors import HistoryError
from stream.pipeline.validation import parse_label, parse_transaction

HANDBOOK = "account_id=CUSTOMER_ID,merchant_id=TERMINAL_ID,amount=TX_AMOUNT,timestamp=TX_DATETIME,label=TX_FRAUD"


def write(path, text):
    path.write_text(text.strip() + "\n")
    return path


@pytest.fixture
def handbook(tmp_path):
    # the Fraud Detection Handbook's layout: no transaction id, naive local timestamps, rows out of order
    return write(
        tmp_path / "handbook.csv",
        """
TX_DATETIME,CUSTOMER_ID,TERMINAL_ID,TX_AMOUNT,TX_FRAUD
2018-04-01 00:10:00,c1,t1,57.16,0
2018-04-01 00:00:31,c2,t2,81.51,1
2018-04-01 00:20:00,c1,,-5,0
2018-04-01 00:30:00,c3,t3,12.00,maybe
not a time,c3,t3,12.00,0
2018-04-01 00:40:00,c3,t3,12.00,
""",
    )


def test_durations_and_bad_ones():
    assert parse_duration("2w") == 14 * 86400
    assert parse_duration("1.5h") == 5400
    for bad in ("", "7 days", "-1d", "d"):
        with pytest.raises(HistoryError, match="duration"):
            parse_duration(bad)


def test_column_map_rejects_unknown_fields_and_bad_pairs():
    assert parse_columns(None) == {}
    with pytest.raises(HistoryError, match="unknown field 'acct'"):
        parse_columns("acct=CUSTOMER_ID")
    with pytest.raises(HistoryError, match="field=COLUMN"):
        parse_columns("account_id")


def test_mapped_file_is_validated_sorted_and_ids_generated(handbook):
    h = load_history(handbook, parse_columns(HANDBOOK))
    assert h.rows_read == 6
    # negative amount, unreadable label and unparsable time are rejected with the worker's codes
    assert h.rejected == {"bad-amount": 1, "bad-value": 1, "bad-timestamp": 1}
    assert [r for r, _, _ in h.rejections] == [3, 4, 5]
    assert [tx.account_id for tx in h.transactions] == ["c2", "c1", "c3"]  # event-time order
    assert [tx.transaction_id for tx in h.transactions] == ["row-2", "row-1", "row-6"]
    assert h.transactions[0].ts == 1522540831.0  # naive time read as UTC
    assert h.transactions[1].merchant_id == "t1"
    assert list(h.rows) == [2, 1, 6]
    assert h.labels[0] == 1.0 and h.labels[1] == 0.0 and math.isnan(h.labels[2])


def test_naive_times_in_a_named_zone(handbook):
    utc = load_history(handbook, parse_columns(HANDBOOK))
    lima = load_history(handbook, parse_columns(HANDBOOK), timezone="America/Lima")
    assert lima.transactions[0].ts - utc.transactions[0].ts == 5 * 3600
    with pytest.raises(HistoryError, match="time zone"):
        load_history(handbook, parse_columns(HANDBOOK), timezone="Mars/Olympus")


def test_missing_columns_are_named(handbook, tmp_path):
    with pytest.raises(HistoryError, match="not in the file: account_id=CUST"):
        load_history(handbook, {"account_id": "CUST"})
    with pytest.raises(HistoryError, match="required field 'account_id'"):
        load_history(handbook)
    with pytest.raises(HistoryError, match="no such file"):
        load_history(tmp_path / "nope.csv")
    with pytest.raises(HistoryError, match="unknown file type"):
        load_history(write(tmp_path / "x.json", "{}"))


def test_parquet_reads_like_csv(handbook, tmp_path):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    df = pd.read_csv(handbook)
    df["TX_DATETIME"] = pd.to_datetime(df["TX_DATETIME"], errors="coerce")
    df.to_parquet(tmp_path / "h.parquet")
    pq = load_history(tmp_path / "h.parquet", parse_columns(HANDBOOK))
    csv_ = load_history(handbook, parse_columns(HANDBOOK))
    assert [tx.ts for tx in pq.transactions] == [tx.ts for tx in csv_.transactions]
    assert [tx.amount for tx in pq.transactions] == [tx.amount for tx in csv_.transactions]


@pytest.fixture
def timed(tmp_path):
    return write(
        tmp_path / "timed.csv",
        """
transaction_id,account_id,timestamp,amount,is_fraud,label_time
a,x,2026-01-01T00:00:00+00:00,10,1,2026-01-01T02:00:00+00:00
b,x,2026-01-01T01:00:00+00:00,10,0,
c,y,2026-01-01T02:00:00+00:00,10,0,2026-01-01T03:00:00+00:00
d,y,2026-01-01T04:00:00+00:00,10,,
""",
    )


def test_label_time_column_decides_arrival_and_labels_precede_same_instant_transactions(timed):
    h = load_history(timed)
    rule = label_rule(h, None)
    assert rule == LabelRule(None)
    seq = [(tx.transaction_id, "tx") if tx else (lab.transaction_id, lab.is_fraud) for tx, lab in events(h, rule)]
    # a's report at 02:00 comes before c (scored at 02:00); b was never reported; d has no label
    assert seq == [("a", "tx"), ("b", "tx"), ("a", True), ("c", "tx"), ("c", False), ("d", "tx")]


def test_label_delay_reports_every_labelled_row(timed):
    h = load_history(timed)
    rule = label_rule(h, "30m")
    at = report_times(h, rule)
    assert np.allclose(at[:3] - h.ts[:3], 1800) and math.isnan(at[3])
    labels = [lab for tx, lab in events(h, rule) if lab is not None]
    assert [lab.transaction_id for lab in labels] == ["a", "b", "c"]
    assert label_rule(load_history(timed, {"label_time": "timestamp", "timestamp": "timestamp"}), None).delay_s is None


def test_replay_messages_read_back_as_the_same_events(timed):
    h = load_history(timed)
    for tx in h.transactions:
        back = parse_transaction(orjson.dumps(transaction_json(tx)))
        assert back == tx and back.ts == tx.ts
    lab = next(lab for _, lab in events(h, label_rule(h, "1h")) if lab is not None)
    assert parse_label(orjson.dumps(label_json(lab))) == lab


def test_speed():
    assert parse_speed("max") is None
    assert parse_speed("3600") == 3600.0
    for bad in ("0", "-2", "fast"):
        with pytest.raises(HistoryError):
            parse_speed(bad)


def test_label_lead_sends_labels_earlier_without_changing_their_report_time(timed):
    h = load_history(timed)
    rule = label_rule(h, None)
    seq = [
        (tx.transaction_id, "tx") if tx else (lab.transaction_id, lab.reported_at) for tx, lab in events(h, rule, 3600)
    ]
    # a's report (02:00) now goes out before b (01:00) is sent; c's (03:00) before d (04:00) as before
    assert seq[:3] == [("a", "tx"), ("a", h.label_times[0]), ("b", "tx")]
    assert [s for s in seq if s[1] != "tx"] == [("a", h.label_times[0]), ("c", h.label_times[2])]


def test_time_range_reads_only_the_timestamp_column(tmp_path, handbook):
    from offline.backtest.history import time_range

    lo, hi = time_range(handbook, parse_columns(HANDBOOK), timezone="UTC")
    assert (lo, hi) == (1522540831.0, 1522543200.0)  # 00:00:31 and 00:40 UTC; "not a time" skipped
    lima = time_range(handbook, parse_columns(HANDBOOK), timezone="America/Lima")
    assert lima == (lo + 5 * 3600, hi + 5 * 3600)
    with pytest.raises(HistoryError, match="not in the file"):
        time_range(handbook, parse_columns("timestamp=NOPE"))


def test_window_checks_and_zones():
    from zoneinfo import ZoneInfo

    from offline.backtest.window import check_window, local_seconds, parse_when

    lima = ZoneInfo("America/Lima")
    first, last = parse_when("2026-01-01", "s", lima), parse_when("2026-01-13T08:12", "e", lima)
    assert last - first == 12 * 86400 + 8 * 3600 + 12 * 60
    assert parse_when("2026-01-01T00:00:00Z", "s", lima) == first - 5 * 3600
    with pytest.raises(HistoryError, match=r"after the history's last transaction \(2026-01-13 08:12 America/Lima\); "
                                           r"the file covers 2026-01-01 00:00 America/Lima – 2026-01-13 08:12"):
        check_window(parse_when("2026-01-15", "s", lima), None, first, last, lima, "2026-01-15")
    check_window(first, last, first, last, lima)  # the whole file is a window
    days = local_seconds(np.array([first, first - 1]), lima) // 86400
    assert days[0] - days[1] == 1  # Lima's midnight separates the days


def test_fraud_type_column_is_kept_for_the_report_not_the_pipeline(tmp_path):
    path = write(tmp_path / "t.csv", """
transaction_id,account_id,timestamp,amount,is_fraud,fraud_type
a,x,2026-01-01T00:00:00Z,5,1,card_testing
b,y,2026-01-01T00:01:00Z,5,0,
""")
    h = load_history(path)
    assert h.fraud_types == ["card_testing", None]
    assert "fraud_type" not in h.transactions[0].extra


def test_a_duration_without_a_unit_is_an_error_not_seconds(tmp_path, capsys):
    from stream.cli import main

    assert parse_duration("0") == 0.0
    for bare in ("7", "3600", "1.5"):
        with pytest.raises(HistoryError, match=f"duration '{bare}' has no unit: write {bare}d"):
            parse_duration(bare)
    history = write(tmp_path / "h.csv", "transaction_id,account_id,timestamp,amount,label\nt,a,2026-01-01Z,5,0")
    for argv in (["evaluate", str(history), "--label-delay", "7"], ["evaluate", str(history), "--retrain-every", "7"],
                 ["replay", str(history), "--label-lead", "30"]):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 2
        assert "has no unit" in capsys.readouterr().err


def test_a_replayed_transaction_in_dollars_is_sent_as_it_was_received():
    """Replay sends the amount in its own currency: the worker converts it to soles once."""
    from offline.backtest.replay import transaction_json
    from stream.pipeline.validation import transaction_from_dict

    tx = transaction_from_dict({"transaction_id": "t1", "account_id": "a", "timestamp": 0, "amount": 40.0,
                                "currency": "USD", "account_balance": 100.0})
    sent = transaction_json(tx)
    assert (sent["amount"], sent["currency"]) == (40.0, "USD")
    again = transaction_from_dict(sent)
    assert again.amount == tx.amount == 150.0
    assert again.account_balance == pytest.approx(tx.account_balance, rel=1e-12)


def test_short_rows_are_bad_rows_with_their_cell_count(tmp_path):
    """A row without a cell for a mapped column is rejected as bad-row (its own length
    named), whichever column it lacks; the others load as usual."""
    path = tmp_path / "short.csv"
    path.write_text(
        "transaction_id,account_id,timestamp,amount,is_fraud,fraud_type\n"
        "t1,a1,1700000000,5.0,1,card_testing\n"
        "t2,a1,1700000001\n"
        "t3,a1,1700000002,6.0\n"
        "t4,a1,1700000003,7.0,0,\n"
    )
    hist = load_history(path)
    assert [tx.transaction_id for tx in hist.transactions] == ["t1", "t4"]
    assert hist.fraud_types == ["card_testing", None]
    assert hist.rejected == {"bad-row": 2}
    assert hist.rejections == [
        (2, "bad-row", "row has 3 cells, header has 6"),
        (3, "bad-row", "row has 4 cells, header has 6"),
    ]
