"""The traffic simulator: determinism, schema, fraud typologies, labels, files, Kafka, CLI."""

from __future__ import annotations

import argparse
import csv
import gzip
import math
import statistics
import sys
import threading
import time
from collections import Counter, defaultdict
from datetime import datetime

import orjson
import pytest

from config.settings import Settings
from offline import simulator as simulate
from offline.simulator import (
    FILE_COLUMNS,
    FRAUD_TYPES,
    TRANSACTION_FIELDS,
    OutputFormatError,
    ProduceError,
    SimConfig,
    SimEvent,
    generate,
    output_format,
    produce,
    register,
    run_simulate,
    write_file,
)
from stream.pipeline.validation import transaction_from_dict

HOUR = 3600.0
DAY = 86_400.0
BIG_N = 50_000


def pen(v) -> float:
    """A simulated transaction's amount in soles (some online purchases are in dollars)."""
    from config.rates import PEN_PER_UNIT

    return v["amount"] * PEN_PER_UNIT[v["currency"]]


def haversine_km(lat1, lon1, lat2, lon2):
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(h))


def parse_iso(text: str) -> datetime:
    dt = datetime.fromisoformat(text)
    assert dt.tzinfo is not None and dt.utcoffset() is not None, text
    return dt


def fingerprint(events):
    return [(e.time, e.kind, e.key, orjson.dumps(e.value), e.is_fraud, e.fraud_type) for e in events]


@pytest.fixture(scope="module")
def big() -> list[SimEvent]:
    return list(generate(SimConfig(seed=7, transactions=BIG_N)))


@pytest.fixture(scope="module")
def txs(big) -> list[SimEvent]:
    return [e for e in big if e.kind == "transaction"]


@pytest.fixture(scope="module")
def by_id(txs) -> dict[str, SimEvent]:
    return {e.value["transaction_id"]: e for e in txs}


# ----------------------------------------------------------------------------- determinism


def test_same_seed_gives_identical_events():
    cfg = SimConfig(seed=11, accounts=400, transactions=4000)
    first, second = fingerprint(generate(cfg)), fingerprint(generate(cfg))
    assert len(first) > 4000  # transactions and labels
    assert first == second


def test_different_seed_gives_different_events():
    a = fingerprint(generate(SimConfig(seed=11, accounts=400, transactions=4000)))
    b = fingerprint(generate(SimConfig(seed=12, accounts=400, transactions=4000)))
    assert a != b
    amounts_a = [orjson.loads(x[3]).get("amount") for x in a[:200]]
    amounts_b = [orjson.loads(x[3]).get("amount") for x in b[:200]]
    assert amounts_a != amounts_b


def test_generate_is_lazy():
    events = generate(SimConfig(accounts=200, transactions=10_000_000))
    first = [next(events) for _ in range(100)]  # a full list would never come back
    assert len(first) == 100


# ----------------------------------------------------------------------------- schema


def test_events_are_in_event_time_order(big):
    times = [e.time for e in big]
    assert all(a <= b for a, b in zip(times, times[1:], strict=False))
    kinds = Counter(e.kind for e in big)
    assert set(kinds) == {"transaction", "label"}


def test_exact_transaction_count_and_unique_ids(txs):
    assert len(txs) == BIG_N
    ids = [e.value["transaction_id"] for e in txs]
    assert len(set(ids)) == len(ids)
    assert all(i.startswith("tx-7-") for i in ids)


def test_transaction_values_follow_the_schema(txs):
    types = {"purchase", "transfer", "withdrawal", "payment", "deposit"}
    channels = {"pos", "online", "atm", "mobile", "branch"}
    institutions = set()
    for e in txs:
        v = e.value
        assert set(v) <= set(TRANSACTION_FIELDS), set(v) - set(TRANSACTION_FIELDS)
        for name in ("transaction_id", "account_id", "currency", "transaction_type",
                     "account_type", "channel", "institution_id"):  # fmt: skip
            assert isinstance(v[name], str) and v[name], (name, v)
        assert isinstance(v["amount"], float) and v["amount"] > 0
        assert round(v["amount"], 2) == v["amount"]
        # every fourth online purchase is paid in US dollars, everything else in soles
        dollars = v["channel"] == "online" and v["transaction_type"] == "purchase"
        assert v["currency"] == "PEN" or (v["currency"] == "USD" and dollars), v
        assert v["transaction_type"] in types and v["channel"] in channels
        assert v["account_type"] in {"checking", "savings", "credit"}
        assert isinstance(v["account_balance"], float) and v["account_balance"] >= 0
        assert isinstance(v["account_age_days"], int) and v["account_age_days"] >= 1
        ts = parse_iso(v["timestamp"])
        assert ts.timestamp() == e.time
        assert v["timestamp"].endswith("-05:00")
        assert e.key == v["account_id"]
        # Channel/type dependent fields.
        digital = v["channel"] in ("online", "mobile")
        assert ("ip_address" in v) == digital and ("device_id" in v) == digital
        located = v["channel"] in ("pos", "atm", "branch", "mobile")
        assert ("latitude" in v) == located and ("longitude" in v) == located
        if located:
            assert -19.0 < v["latitude"] < -3.0 and -82.0 < v["longitude"] < -68.0  # Peru
        if v["transaction_type"] in ("purchase", "withdrawal", "payment"):
            assert isinstance(v["merchant_id"], str) and isinstance(v["merchant_category"], str)
        if v["transaction_type"] == "transfer":
            assert isinstance(v["counterparty_account"], str) and "merchant_id" not in v
        institutions.add(v["institution_id"])
        # The pipeline's own validator accepts every simulated transaction.
        parsed = transaction_from_dict(v)
        assert parsed.ts == e.time and parsed.amount == pen(v)
    assert institutions == {"BCP", "BBVA", "INTERBANK", "SCOTIABANK", "BANBIF"}
    mix = Counter(e.value["transaction_type"] for e in txs)
    assert set(mix) == types and mix["purchase"] > mix["transfer"] > mix["deposit"]


def test_no_ground_truth_inside_values(big):
    for e in big:
        assert not {"is_fraud", "fraud_type", "label_time"} & set(e.value) or e.kind == "label"
        if e.kind == "label":
            assert set(e.value) == {"transaction_id", "account_id", "is_fraud", "reported_at"}
            assert e.is_fraud is False and e.fraud_type is None


def test_merchants_and_accounts_spread_over_peruvian_cities(txs):
    lima = sum(1 for e in txs if e.value["channel"] == "pos" and abs(e.value["latitude"] + 12.05) < 0.5)
    pos = sum(1 for e in txs if e.value["channel"] == "pos")
    assert 0.35 < lima / pos < 0.75  # Lima most, not all
    iquitos = [e for e in txs if "latitude" in e.value and abs(e.value["latitude"] + 3.75) < 0.3]
    assert iquitos


def test_event_time_span_follows_activity_and_diurnal_and_payday_pattern():
    start = datetime.fromisoformat("2026-01-14T00:00:00-05:00").timestamp()
    cfg = SimConfig(seed=3, accounts=1000, transactions=12_000, start=start)
    txs = [e for e in generate(cfg) if e.kind == "transaction"]
    span_days = (txs[-1].time - txs[0].time) / DAY
    assert 3.0 < span_days < 5.0, span_days  # 12,000 / (1,000 x 3 per day) = 4 days
    hours = Counter(int(e.value["timestamp"][11:13]) for e in txs)
    assert hours[12] > 8 * hours[3]  # quiet nights
    days = Counter(e.value["timestamp"][:10] for e in txs)
    assert days["2026-01-15"] > 1.15 * days["2026-01-14"]  # quincena payday
    deposits = Counter(e.value["timestamp"][:10] for e in txs if e.value["transaction_type"] == "deposit")
    assert deposits["2026-01-15"] / days["2026-01-15"] > 1.5 * deposits["2026-01-14"] / days["2026-01-14"]


def test_balances_move_with_the_account():
    txs = [e.value for e in generate(SimConfig(seed=5, accounts=20, transactions=3000)) if e.kind == "transaction"]
    by_account = defaultdict(list)
    for v in txs:
        by_account[v["account_id"]].append(v)
    changed = 0
    for rows in by_account.values():
        for prev, cur in zip(rows, rows[1:], strict=False):
            delta = -prev["amount"] if prev["transaction_type"] != "deposit" else prev["amount"]
            if abs(cur["account_balance"] - (prev["account_balance"] + delta)) < 0.02:
                changed += 1
    assert changed > 0.8 * (len(txs) - len(by_account))


# ----------------------------------------------------------------------------- fraud


def test_fraud_rate_near_target(txs):
    frauds = sum(e.is_fraud for e in txs)
    assert 0.004 <= frauds / len(txs) <= 0.012, frauds / len(txs)
    assert all((e.fraud_type in FRAUD_TYPES) == e.is_fraud for e in txs)


def test_fraud_rate_is_configurable():
    txs = [e for e in generate(SimConfig(seed=2, accounts=1000, transactions=20_000, fraud_rate=0.05))
           if e.kind == "transaction"]  # fmt: skip
    assert 0.03 < sum(e.is_fraud for e in txs) / len(txs) < 0.07


def test_every_typology_appears(txs):
    mix = Counter(e.fraud_type for e in txs if e.is_fraud)
    assert set(mix) == set(FRAUD_TYPES)
    total = sum(mix.values())
    assert all(n / total >= 0.05 for n in mix.values()), mix


def test_card_testing_is_a_burst_of_small_amounts_then_a_larger_one(txs):
    last_time = txs[-1].time
    episodes = defaultdict(list)
    for e in txs:
        if e.fraud_type == "card_testing":
            episodes[e.key].append(e)
    checked = 0
    for rows in episodes.values():
        if last_time - rows[0].time < 2 * HOUR:
            continue  # may be cut short by the end of the run
        small = [e.time for e in rows if e.value["amount"] < 10]
        best = max(sum(1 for u in small if t <= u <= t + 600) for t in small)
        assert best >= 5, [(e.time, e.value["amount"]) for e in rows]
        assert all(e.value["channel"] == "online" for e in rows)
        assert len({e.value["merchant_id"] for e in rows if e.value["amount"] < 10}) <= 3
        big_after = [e for e in rows if e.value["amount"] >= 100 and e.time > small[-1]]
        assert big_after and big_after[0].time - small[-1] <= HOUR
        checked += 1
    assert checked >= 3


def test_impossible_travel_needs_more_than_900_kmh(txs):
    last_genuine: dict[str, tuple[float, float, float]] = {}
    speeds = []
    for e in txs:
        v = e.value
        if "latitude" not in v:
            continue
        if e.fraud_type == "impossible_travel":
            t0, lat0, lon0 = last_genuine[e.key]
            km = haversine_km(lat0, lon0, v["latitude"], v["longitude"])
            hours = (e.time - t0) / HOUR
            assert hours <= 1.0 and km > 150
            speeds.append(km / hours)
        elif not e.is_fraud:
            last_genuine[e.key] = (e.time, v["latitude"], v["longitude"])
    assert len(speeds) >= 10
    assert min(speeds) > 900, min(speeds)


def test_genuine_customers_never_travel_impossibly(txs):
    last: dict[str, tuple[float, float, float]] = {}
    hops = 0
    for e in txs:
        v = e.value
        if e.is_fraud or "latitude" not in v:
            continue
        if e.key in last:
            t0, lat0, lon0 = last[e.key]
            km = haversine_km(lat0, lon0, v["latitude"], v["longitude"])
            if km > 100:
                hops += 1
                assert km / max((e.time - t0) / HOUR, 1e-9) < 900
        last[e.key] = (e.time, v["latitude"], v["longitude"])
    assert hops > 0  # customers do travel (at plausible speeds)


def test_account_takeover_uses_new_device_ip_and_payee_mostly_at_night(txs):
    seen_devices, seen_ips, seen_payees = defaultdict(set), defaultdict(set), defaultdict(set)
    ato = []
    for e in txs:
        v = e.value
        if e.fraud_type == "account_takeover":
            assert v["transaction_type"] == "transfer" and v["channel"] in ("mobile", "online")
            assert v["device_id"] not in seen_devices[e.key]
            assert v["counterparty_account"] not in seen_payees[e.key]
            ato.append(e)
        elif not e.is_fraud:
            seen_devices[e.key].add(v.get("device_id"))
            seen_ips[e.key].add(v.get("ip_address"))
            seen_payees[e.key].add(v.get("counterparty_account"))
    assert len(ato) >= 10
    assert sum(e.value["ip_address"] not in seen_ips[e.key] for e in ato) >= 0.9 * len(ato)
    night = sum(int(e.value["timestamp"][11:13]) < 5 for e in ato)
    assert night >= 0.5 * len(ato)
    assert max(e.value["amount"] for e in ato) >= 500


def test_amount_spikes_are_many_times_the_account_normal(txs):
    genuine = defaultdict(list)
    for e in txs:
        if not e.is_fraud and e.value["transaction_type"] == "purchase":
            genuine[e.key].append(e.value["amount"])
    ratios = [
        e.value["amount"] / statistics.median(genuine[e.key])
        for e in txs
        if e.fraud_type == "amount_spike" and len(genuine[e.key]) >= 3
    ]
    assert len(ratios) >= 10
    assert statistics.median(ratios) >= 5


def test_compromised_terminal_every_card_used_there_is_later_defrauded_elsewhere(txs):
    first_fraud: dict[str, SimEvent] = {}
    for e in txs:
        if e.fraud_type == "compromised_merchant":
            first_fraud.setdefault(e.key, e)
    assert len(first_fraud) >= 10
    uses = defaultdict(list)  # terminal -> genuine card-present uses, in time order
    for e in txs:
        if not e.is_fraud and e.value["channel"] == "pos":
            uses[e.value["merchant_id"]].append(e)

    def skimmed(use: SimEvent) -> bool:  # this card's cash-out came 2 h to 4 days later
        fraud = first_fraud.get(use.key)
        return fraud is not None and 2 * HOUR <= fraud.time - use.time <= 4 * DAY

    # A compromised terminal shows a run of consecutive uses whose cards are *all* cashed
    # out later. Victims are ~1% of cards, so runs of 3+ never happen by chance.
    explained, long_runs = set(), 0
    for terminal_uses in uses.values():
        run: list[SimEvent] = []
        for use in [*terminal_uses, None]:
            if use is not None and skimmed(use):
                run.append(use)
                continue
            cards = {u.key for u in run}
            if len(cards) >= 3:
                explained |= cards
                long_runs += len(cards) >= 5
                for u in run:  # cashed out in another city, not at the skimming terminal
                    f = first_fraud[u.key].value
                    km = haversine_km(u.value["latitude"], u.value["longitude"], f["latitude"], f["longitude"])
                    assert km > 50 and f["channel"] in ("atm", "pos")
            run = []
    assert long_runs >= 1
    assert len(explained) >= 0.5 * len(first_fraud)


# ----------------------------------------------------------------------------- labels


def test_labels_follow_frauds_with_realistic_delays(big, by_id):
    labels = [e for e in big if e.kind == "label"]
    fraud_delays, genuine = [], 0
    reported = set()
    for e in labels:
        v = e.value
        tx = by_id[v["transaction_id"]]
        assert v["account_id"] == tx.key == e.key
        assert parse_iso(v["reported_at"]).timestamp() == e.time
        assert e.time > tx.time
        assert v["is_fraud"] is tx.is_fraud
        if tx.is_fraud:
            fraud_delays.append((e.time - tx.time) / DAY)
            reported.add(v["transaction_id"])
        else:
            genuine += 1
            assert tx.value["amount"] >= 2500  # explicit "genuine" only for high amounts
            assert e.time - tx.time <= 7 * DAY
    assert min(fraud_delays) >= HOUR / DAY
    assert max(fraud_delays) <= 30.0
    assert 1.0 <= statistics.median(fraud_delays) <= 4.0
    assert max(fraud_delays) > 7.0  # a tail of weeks
    assert genuine > 0
    frauds = [e for e in by_id.values() if e.is_fraud]
    unreported = 1 - len(reported) / len(frauds)
    assert 0.04 <= unreported <= 0.18, unreported
    assert len(reported) == len({e.value["transaction_id"] for e in labels if e.value["is_fraud"]})


def test_unreported_share_is_configurable():
    def share(u: float) -> float:
        events = list(generate(SimConfig(seed=4, accounts=1000, transactions=20_000, unreported_share=u)))
        frauds = sum(e.is_fraud for e in events)
        reported = sum(e.kind == "label" and e.value["is_fraud"] for e in events)
        return 1 - reported / frauds

    assert share(0.0) == 0.0
    assert 0.35 <= share(0.5) <= 0.65


# ----------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    "kwargs",
    [
        {"accounts": 0},
        {"transactions": -1},
        {"merchants": 5},
        {"fraud_rate": 0.0},
        {"fraud_rate": 0.3},
        {"tx_per_account_per_day": 0.0},
        {"unreported_share": 1.5},
        {"seed": -1},
    ],
)
def test_bad_config_is_rejected(kwargs):
    with pytest.raises(ValueError):
        SimConfig(**kwargs)


def test_defaults():
    cfg = SimConfig()
    assert cfg.n_merchants == 500 and SimConfig(accounts=50).n_merchants == 20
    assert datetime.fromtimestamp(cfg.start, tz=simulate.LIMA).isoformat() == "2026-01-01T00:00:00-05:00"
    assert 6 < cfg.expected_days < 7.5


def test_small_worlds_work():
    for cfg in (SimConfig(accounts=1, transactions=300), SimConfig(accounts=30, transactions=0)):
        txs = [e for e in generate(cfg) if e.kind == "transaction"]
        assert len(txs) == cfg.transactions


# ----------------------------------------------------------------------------- files


def test_csv_round_trips_rows_columns_and_ground_truth(tmp_path):
    cfg = SimConfig(seed=9, accounts=500, transactions=6000, fraud_rate=0.02)
    events = list(generate(cfg))
    txs = [e for e in events if e.kind == "transaction"]
    label_time = {e.value["transaction_id"]: e.value["reported_at"] for e in events if e.kind == "label"}
    path = tmp_path / "out" / "history.csv"
    assert write_file(cfg, path, progress=False) == len(txs) == 6000
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames) == FILE_COLUMNS
        rows = list(reader)
    assert len(rows) == len(txs)
    for row, e in zip(rows, txs, strict=True):
        v = e.value
        assert row["transaction_id"] == v["transaction_id"]
        assert row["timestamp"] == v["timestamp"]
        assert float(row["amount"]) == v["amount"]
        assert row["ip_address"] == v.get("ip_address", "")
        assert row["is_fraud"] == ("1" if e.is_fraud else "0")
        assert row["fraud_type"] == (e.fraud_type or "")
        assert row["label_time"] == label_time.get(v["transaction_id"], "")
    assert sum(r["is_fraud"] == "1" for r in rows) > 50


def test_csv_gz_is_written_compressed(tmp_path):
    path = tmp_path / "h.csv.gz"
    assert write_file(SimConfig(accounts=100, transactions=500), path, progress=False) == 500
    with gzip.open(path, "rt", newline="") as fh:
        assert sum(1 for _ in csv.reader(fh)) == 501


def test_output_format_by_extension_and_clear_errors(monkeypatch):
    assert output_format("a/b.CSV") == "csv" and output_format("x.csv.gz") == "csv"
    assert output_format("x.data", fmt="csv") == "csv"
    with pytest.raises(OutputFormatError, match=r"\.csv"):
        output_format("history.json")
    with pytest.raises(OutputFormatError):
        output_format("x.csv", fmt="xlsx")
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # as if not installed
    with pytest.raises(OutputFormatError, match="pip install pyarrow"):
        output_format("history.parquet")
    with pytest.raises(OutputFormatError, match="pip install pyarrow"):
        write_file(SimConfig(accounts=10, transactions=10), "history.parquet", progress=False)


def test_parquet_round_trip(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "h.parquet"
    assert write_file(SimConfig(accounts=200, transactions=2000), path, progress=False) == 2000
    table = pq.read_table(path)
    assert table.num_rows == 2000 and tuple(table.column_names) == FILE_COLUMNS


def test_write_file_shows_progress(tmp_path, capsys):
    write_file(SimConfig(accounts=100, transactions=1500), tmp_path / "p.csv", progress=True)
    assert "1,500/1,500" in capsys.readouterr().err


# ----------------------------------------------------------------------------- Kafka


class FakeProducer:
    instances: list[FakeProducer] = []

    def __init__(self, conf):
        self.conf = conf
        self.sent: list[tuple[str, bytes, bytes]] = []
        self.polls = 0
        self.flushed = False
        self.full_once = True
        self.fail = conf.get("bootstrap.servers") == "fail:9092"
        FakeProducer.instances.append(self)

    def produce(self, topic, value, key):
        if self.full_once and len(self.sent) == 5:
            self.full_once = False
            raise BufferError("queue full")
        self.sent.append((topic, key, value))

    def poll(self, timeout=0):
        self.polls += 1
        return 0

    def flush(self, timeout=None):
        self.flushed = True
        if self.fail:
            self.conf["on_delivery"]("broker down", None)
        return 0


@pytest.fixture
def fake_kafka(monkeypatch):
    import confluent_kafka

    FakeProducer.instances = []
    monkeypatch.setattr(confluent_kafka, "Producer", FakeProducer)
    return FakeProducer


def test_produce_sends_keyed_json_to_both_topics(fake_kafka):
    events = list(generate(SimConfig(seed=1, accounts=300, transactions=3000, fraud_rate=0.05)))
    counts = produce(events, {"bootstrap.servers": "x:9092"}, "tx-topic", "label-topic", progress=False)
    p = fake_kafka.instances[0]
    assert p.flushed and p.polls > 0 and p.conf["bootstrap.servers"] == "x:9092"
    n_labels = sum(e.kind == "label" for e in events)
    assert counts == {
        "transactions": 3000,
        "labels": n_labels,
        "frauds": sum(e.is_fraud for e in events),
    }
    assert len(p.sent) == len(events)  # the BufferError was retried, nothing lost
    for (topic, key, value), e in zip(p.sent, events, strict=True):
        assert topic == ("tx-topic" if e.kind == "transaction" else "label-topic")
        assert key == e.key.encode() and orjson.loads(value) == e.value


def test_produce_paces_transactions_by_rate(fake_kafka):
    events = list(generate(SimConfig(accounts=100, transactions=300)))
    began = time.monotonic()
    produce(events, {}, "t", "l", rate=1000.0, progress=False)
    assert time.monotonic() - began >= 0.25  # 300 tx at 1000/s
    began = time.monotonic()
    produce(events, {}, "t", "l", rate=0.0, progress=False)
    assert time.monotonic() - began < 0.25


def test_produce_stops_when_asked(fake_kafka):
    stop = threading.Event()

    def events():
        for i, e in enumerate(generate(SimConfig(accounts=100, transactions=5000))):
            if i == 100:
                stop.set()
            yield e

    counts = produce(events(), {}, "t", "l", rate=0.0, progress=False, stop=stop)
    assert counts["transactions"] <= 100
    assert fake_kafka.instances[0].flushed


def test_produce_reports_delivery_failures(fake_kafka):
    events = list(generate(SimConfig(accounts=50, transactions=50)))
    with pytest.raises(ProduceError, match="broker down"):
        produce(events, {"bootstrap.servers": "fail:9092"}, "t", "l", progress=False)


# ----------------------------------------------------------------------------- CLI


@pytest.fixture
def parser():
    p = argparse.ArgumentParser(prog="kuntur")
    register(p.add_subparsers(dest="command"))
    return p


def test_cli_help_explains_typologies_and_flags(parser):
    sub = parser._subparsers._group_actions[0].choices["simulate"]
    text = sub.format_help()
    for name in FRAUD_TYPES:
        assert name in text
    for flag in ("--rate", "--duration", "--transactions", "--accounts", "--merchants", "--seed",
                 "--fraud-rate", "--tx-per-account-per-day", "--start", "--out", "--no-progress"):  # fmt: skip
        assert flag in text
    assert all(a.help for a in sub._actions)


@pytest.mark.parametrize(
    "argv",
    [
        ["--transactions", "0"],
        ["--accounts", "-3"],
        ["--merchants", "5"],
        ["--fraud-rate", "0"],
        ["--fraud-rate", "0.5"],
        ["--rate", "-1"],
        ["--duration", "0"],
        ["--duration", "10"],  # no unit: 10 seconds? minutes?
        ["--duration", "10s", "--transactions", "5"],
        ["--out", "history.json"],
        ["--start", "yesterday"],
        ["--tx-per-account-per-day", "0"],
        ["--seed", "x"],
    ],
)
def test_cli_rejects_bad_values(parser, argv, capsys):
    with pytest.raises(SystemExit) as exc:
        parser.parse_args(["simulate", *argv])
    assert exc.value.code == 2
    assert "error" in capsys.readouterr().err


def test_cli_duration_sets_transactions_and_needs_a_rate(parser, capsys):
    args = parser.parse_args(["simulate", "--rate", "250", "--duration", "4s", "--seed", "3"])
    cfg = simulate._config_from_args(args)
    assert cfg.transactions == 1000 and cfg.seed == 3 and args.func is run_simulate
    args = parser.parse_args(["simulate", "--rate", "0", "--duration", "4s"])
    with pytest.raises(SystemExit):
        simulate._config_from_args(args)
    assert "--duration needs a positive --rate" in capsys.readouterr().err
    args = parser.parse_args(["simulate", "--start", "2026-03-01"])
    assert simulate._config_from_args(args).start == datetime.fromisoformat("2026-03-01T00:00:00-05:00").timestamp()
    # a time without a zone is read in the timezone setting; an explicit offset always wins
    utc = simulate._config_from_args(args, "UTC").start
    assert utc == datetime.fromisoformat("2026-03-01T00:00:00+00:00").timestamp()
    args = parser.parse_args(["simulate", "--start", "2026-03-01T00:00:00-05:00"])
    utc = simulate._config_from_args(args, "UTC").start
    assert utc == datetime.fromisoformat("2026-03-01T05:00:00+00:00").timestamp()


def test_cli_writes_a_file(parser, tmp_path, capsys):
    out = tmp_path / "sim.csv"
    args = parser.parse_args(["simulate", "--transactions", "2000", "--accounts", "200",
                              "--out", str(out), "--no-progress"])  # fmt: skip
    assert args.func(args, Settings()) == 0
    assert "wrote 2,000 transactions" in capsys.readouterr().out
    with out.open() as fh:
        assert sum(1 for _ in fh) == 2001


def test_cli_produces_to_the_configured_topics(parser, fake_kafka, capsys):
    settings = Settings(kafka_bootstrap="broker:9999", topic_transactions="tx-in", topic_labels="lab-in")
    args = parser.parse_args(["simulate", "--transactions", "1500", "--accounts", "150", "--rate", "0",
                              "--no-progress", "--fraud-rate", "0.05"])  # fmt: skip
    assert run_simulate(args, settings) == 0
    p = fake_kafka.instances[0]
    assert p.conf["bootstrap.servers"] == "broker:9999"
    topics = Counter(topic for topic, _, _ in p.sent)
    assert topics["tx-in"] == 1500 and topics["lab-in"] > 0
    assert "produced 1,500 transactions" in capsys.readouterr().out


def test_hard_mode_is_reproducible_noisier_and_subtler():
    cfg = SimConfig(seed=5, accounts=600, transactions=40_000, fraud_rate=0.02, hard=True)
    hard = list(generate(cfg))
    assert fingerprint(iter(hard)) == fingerprint(generate(cfg))
    easy = [e for e in generate(SimConfig(seed=5, accounts=600, transactions=40_000, fraud_rate=0.02))
            if e.kind == "transaction"]
    hard_tx = [e for e in hard if e.kind == "transaction"]

    def spike(events):  # median amount of amount-spike frauds against the median genuine purchase
        frauds = [pen(e.value) for e in events if e.fraud_type == "amount_spike"]
        genuine = [pen(e.value) for e in events if not e.is_fraud and e.value["transaction_type"] == "purchase"]
        return statistics.median(frauds) / statistics.median(genuine)

    assert spike(hard_tx) < spike(easy) / 2
    probes = [pen(e.value) for e in hard_tx if e.fraud_type == "card_testing"]
    assert min(probes) >= 3.0
    genuine_devices = Counter(e.value.get("device_id") for e in hard_tx if not e.is_fraud and "device_id" in e.value)
    easy_devices = Counter(e.value.get("device_id") for e in easy if not e.is_fraud and "device_id" in e.value)
    assert len(genuine_devices) > len(easy_devices) * 1.3  # genuine new phones


def test_some_online_purchases_are_in_dollars_and_convert_back_to_soles(txs):
    from stream.pipeline.validation import transaction_from_dict

    usd = [e.value for e in txs if e.value["currency"] == "USD"]
    assert 0 < len(usd) < len(txs) / 10
    tx = transaction_from_dict(dict(usd[0]))
    assert tx.original_amount == usd[0]["amount"] and tx.amount == usd[0]["amount"] * 3.75
