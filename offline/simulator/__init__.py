"""Seeded, reproducible synthetic traffic of Peruvian banks, with labelled fraud.

``generate(cfg)`` streams :class:`SimEvent` objects in non-decreasing event time:
transactions (DESIGN.md Transaction JSON) and the delayed fraud reports that banks'
investigation / chargeback systems would send (Label JSON). The same seed always gives
the same events, byte for byte. ``write_file`` writes a labelled CSV/Parquet history
(for ``kuntur replay`` / ``kuntur evaluate``), ``produce`` sends the stream to Kafka and
``register`` adds the ``kuntur simulate`` command.

World
    Accounts live in Peruvian cities (real coordinates; Lima holds about half), belong to
    one of five banks, are checking/savings/credit, have an age, a lognormal spending
    level, 1-2 usual devices and IPs, usual merchants, billers and payees. Merchants and
    terminals (POS merchants by category, online shops, billers, ATMs, bank branches) sit
    in cities with coordinates. Customers occasionally travel to another city for a few
    days, always at plausible speeds (legitimate traffic never shows impossible travel
    between cities).

Time
    One Poisson process over all accounts with intensity
    ``accounts * tx_per_account_per_day`` per day, modulated by hour of day (quiet nights,
    lunch and evening peaks), day of week (busier Fridays/Saturdays) and the *quincena*
    paydays (15th and last day of the month, and the day after, are busier and carry
    salary deposits). Each transaction picks an account in proportion to its activity
    level. Event times are whole seconds; timestamps are ISO-8601 in Lima time
    (``-05:00``; Peru has no daylight saving time).

Fraud typologies (``fraud_type`` in the ground truth)
    ``card_testing``
        6-14 tiny online amounts (S/ 0.50-5.00) at 1-3 online merchants, seconds apart,
        from a new device and IP; then 1-2 large online purchases minutes later.
    ``account_takeover``
        Online/mobile banking taken over: new device + new IP, usually at night
        (00:30-04:30), optionally a tiny test transfer, then 1-3 transfers draining
        40-90% of the balance to mule accounts (CCI numbers from a shared mule pool, so
        mules receive from several victims).
    ``compromised_merchant``
        A skimmed POS terminal (common point of compromise). Chosen: *the cards used at
        the terminal later see fraudulent use*; the terminal's own transactions stay
        genuine. From the compromise until 5-15 cards have been skimmed (at most 3 days),
        every card used at that terminal is cloned and cashed out 2 hours to 4 days later
        (median ~16 h): 1-2 ATM withdrawals or electronics purchases in *another* city.
    ``amount_spike``
        A compromised card used for 1-3 purchases of 5-20x the account's normal amount
        for the category (electronics, department stores, travel, ...), in store or online.
    ``impossible_travel``
        A genuine card-present transaction where the customer is, then 1-2 card-present
        fraudulent ones 5-40 minutes later in a city far enough to need > 900 km/h
        (e.g. Lima, then Iquitos 20 minutes later).

    Episodes are placed so that the share of fraudulent transactions is ``fraud_rate``
    (default 0.7%), split about 30/20/20/15/15% (transactions) among the typologies in
    the order above. An account is never in two fraud episodes at once.

Labels
    Every fraudulent transaction is reported (``is_fraud: true``) once the customer or
    the bank notices: per episode a lognormal delay (median 2 days, sigma 1, at least
    1 hour, at most 30 days after each transaction) after the episode's last
    transaction, plus a few minutes of jitter per transaction. ``unreported_share``
    (default 10%) of fraudulent transactions are never reported. In addition,
    ``genuine_label_share`` (default 20%) of *high-amount* genuine transactions get an
    explicit ``is_fraud: false`` label (the bank called, the customer confirmed), a few
    hours later. Labels are emitted at their ``reported_at`` event time, interleaved
    with transactions; after the last transaction the labels still pending are emitted.

Field notes
    ``account_balance`` is the available balance *before* the transaction (for credit
    accounts: available credit). ``ip_address``/``device_id`` only on online/mobile
    transactions; ``latitude``/``longitude`` only on pos/atm/branch/mobile ones;
    ``merchant_id``/``merchant_category`` on purchases, withdrawals, payments and
    ATM/branch deposits (the terminal); ``counterparty_account`` on transfers. Absent
    fields are omitted from the JSON (empty cells in CSV, nulls in Parquet).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import heapq
import math
import random
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from features.transaction import SCHEMA_FIELDS
from offline.progress import Progress, format_count, format_duration, format_rate

__all__ = [
    "DEFAULT_START",
    "FILE_COLUMNS",
    "FRAUD_TYPES",
    "LIMA",
    "TRANSACTION_FIELDS",
    "OutputFormatError",
    "ProduceError",
    "SimConfig",
    "SimEvent",
    "generate",
    "iso",
    "output_format",
    "produce",
    "register",
    "run_simulate",
    "write_file",
]

LIMA = timezone(timedelta(hours=-5), "America/Lima")  # Peru: UTC-5 all year, no DST
DEFAULT_START = datetime(2026, 1, 1, tzinfo=LIMA).timestamp()
DAY = 86_400
_UTC_OFFSET_S = -5 * 3600
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

FRAUD_TYPES = (
    "card_testing",
    "account_takeover",
    "compromised_merchant",
    "amount_spike",
    "impossible_travel",
)
#: Every Transaction field of DESIGN.md, in file column order.
TRANSACTION_FIELDS = SCHEMA_FIELDS
#: Columns of a simulated history file: the transaction plus the ground truth.
#: ``label_time`` is the label's ``reported_at`` (empty if none was sent): with
#: ``is_fraud=1`` a fraud report, with ``is_fraud=0`` an explicit "genuine" confirmation.
FILE_COLUMNS = (*TRANSACTION_FIELDS, "is_fraud", "fraud_type", "label_time")

MAX_FRAUD_RATE = 0.2


# ----------------------------------------------------------------------------- public types


@dataclass(frozen=True)
class SimConfig:
    """What to simulate. Same config (including ``seed``) -> identical events."""

    seed: int = 7
    accounts: int = 5000
    merchants: int | None = None  # default accounts // 10 (min 20)
    transactions: int = 100_000
    start: float = DEFAULT_START  # 2026-01-01T00:00:00-05:00
    tx_per_account_per_day: float = 3.0
    fraud_rate: float = 0.007
    unreported_share: float = 0.10
    genuine_label_share: float = 0.20  # of high-amount genuine transactions

    def __post_init__(self) -> None:
        problems = []
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            problems.append(f"seed must be an integer >= 0, got {self.seed!r}")
        if self.accounts < 1:
            problems.append(f"accounts must be >= 1, got {self.accounts}")
        if self.merchants is not None and self.merchants < 20:
            problems.append(f"merchants must be >= 20 (one per category), got {self.merchants}")
        if self.transactions < 0:
            problems.append(f"transactions must be >= 0, got {self.transactions}")
        if not math.isfinite(self.start) or self.start < 0:
            problems.append(f"start must be epoch seconds >= 0, got {self.start}")
        if not self.tx_per_account_per_day > 0 or not math.isfinite(self.tx_per_account_per_day):
            problems.append(f"tx_per_account_per_day must be > 0, got {self.tx_per_account_per_day}")
        if not 0.0 < self.fraud_rate <= MAX_FRAUD_RATE:
            problems.append(f"fraud_rate must be in (0, {MAX_FRAUD_RATE}], got {self.fraud_rate}")
        if not 0.0 <= self.unreported_share <= 1.0:
            problems.append(f"unreported_share must be in [0, 1], got {self.unreported_share}")
        if not 0.0 <= self.genuine_label_share <= 1.0:
            problems.append(f"genuine_label_share must be in [0, 1], got {self.genuine_label_share}")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def n_merchants(self) -> int:
        return self.merchants if self.merchants is not None else max(20, self.accounts // 10)

    @property
    def expected_days(self) -> float:
        """Approximate event-time span of the transactions, in days."""
        return self.transactions / (self.accounts * self.tx_per_account_per_day)


@dataclass(frozen=True, slots=True)
class SimEvent:
    """One simulated message. ``time`` is its event time (epoch seconds)."""

    time: float
    kind: str  # "transaction" or "label"
    key: str  # account_id (the Kafka key)
    value: dict  # Transaction or Label JSON object; never ground truth
    is_fraud: bool  # ground truth for transactions (False for labels)
    fraud_type: str | None


class OutputFormatError(ValueError):
    """The output file format is unknown or its writer is not installed."""


# ----------------------------------------------------------------------------- the world

# name, latitude, longitude, share of population/accounts, spread (degrees, 1 sigma)
_CITIES: tuple[tuple[str, float, float, float, float], ...] = (
    ("Lima", -12.0464, -77.0428, 0.50, 0.07),
    ("Arequipa", -16.3989, -71.5350, 0.07, 0.03),
    ("Trujillo", -8.1116, -79.0288, 0.06, 0.03),
    ("Chiclayo", -6.7714, -79.8409, 0.05, 0.025),
    ("Piura", -5.1945, -80.6328, 0.05, 0.025),
    ("Cusco", -13.5320, -71.9675, 0.04, 0.02),
    ("Huancayo", -12.0651, -75.2049, 0.04, 0.02),
    ("Iquitos", -3.7437, -73.2516, 0.03, 0.02),
    ("Tacna", -18.0146, -70.2536, 0.03, 0.02),
    ("Chimbote", -9.0853, -78.5783, 0.03, 0.02),
    ("Ica", -14.0678, -75.7286, 0.03, 0.02),
    ("Puno", -15.8402, -70.0219, 0.02, 0.015),
    ("Pucallpa", -8.3791, -74.5539, 0.02, 0.02),
    ("Cajamarca", -7.1638, -78.5003, 0.02, 0.015),
)

# name, kind, share of merchants, median amount (PEN), lognormal sigma, share of visits
_CATEGORIES: tuple[tuple[str, str, float, float, float, float], ...] = (
    ("supermarket", "pos", 0.13, 85.0, 0.7, 0.22),
    ("restaurant", "pos", 0.15, 45.0, 0.6, 0.22),
    ("fuel", "pos", 0.07, 110.0, 0.45, 0.10),
    ("pharmacy", "pos", 0.07, 40.0, 0.7, 0.10),
    ("clothing", "pos", 0.05, 150.0, 0.7, 0.06),
    ("department_store", "pos", 0.03, 220.0, 0.8, 0.04),
    ("electronics", "pos", 0.03, 700.0, 0.8, 0.02),
    ("transport", "pos", 0.04, 15.0, 0.6, 0.14),
    ("entertainment", "pos", 0.03, 60.0, 0.6, 0.06),
    ("health", "pos", 0.03, 150.0, 0.8, 0.04),
    ("online_retail", "online", 0.06, 130.0, 0.8, 0.50),
    ("digital_services", "online", 0.03, 30.0, 0.5, 0.40),
    ("travel", "online", 0.02, 650.0, 0.7, 0.10),
    ("utilities", "biller", 0.025, 120.0, 0.5, 0.45),
    ("telecom", "biller", 0.02, 80.0, 0.4, 0.40),
    ("education", "biller", 0.015, 600.0, 0.5, 0.15),
    ("atm", "atm", 0.08, 0.0, 0.0, 0.0),
    ("bank_branch", "branch", 0.03, 0.0, 0.0, 0.0),
)
_PREFIX = {"pos": "mer", "online": "web", "biller": "bil", "atm": "atm", "branch": "agn"}

_INSTITUTIONS = ("BCP", "BBVA", "INTERBANK", "SCOTIABANK", "BANBIF")
_INSTITUTION_SHARE = (0.34, 0.23, 0.20, 0.16, 0.07)
_ACCOUNT_TYPES = ("savings", "checking", "credit")
_ACCOUNT_TYPE_SHARE = (0.50, 0.25, 0.25)

# Legitimate (transaction_type, channel) mix per account type.
_COMBOS: tuple[tuple[str, str], ...] = (
    ("purchase", "pos"),  # 0
    ("purchase", "online"),  # 1
    ("purchase", "mobile"),  # 2  QR / wallet payment at a physical merchant
    ("withdrawal", "atm"),  # 3
    ("withdrawal", "branch"),  # 4
    ("transfer", "mobile"),  # 5
    ("transfer", "online"),  # 6
    ("transfer", "branch"),  # 7
    ("payment", "online"),  # 8
    ("payment", "mobile"),  # 9
    ("payment", "branch"),  # 10
    ("deposit", "atm"),  # 11
    ("deposit", "branch"),  # 12
)
_COMBO_SHARE = {
    "savings": (0.40, 0.07, 0.07, 0.14, 0.02, 0.10, 0.04, 0.01, 0.04, 0.05, 0.01, 0.02, 0.03),
    "checking": (0.38, 0.09, 0.06, 0.10, 0.02, 0.12, 0.07, 0.01, 0.06, 0.05, 0.01, 0.01, 0.02),
    "credit": (0.58, 0.20, 0.05, 0.03, 0.0, 0.0, 0.0, 0.0, 0.09, 0.05, 0.0, 0.0, 0.0),
}
_LOCATED = frozenset({0, 2, 3, 4, 5, 7, 9, 10, 11, 12})  # codes that carry coordinates

# Hour-of-day (Lima) and day-of-week (Mon..Sun) intensity, normalised to mean 1 below.
_HOURLY = (0.25, 0.12, 0.07, 0.05, 0.07, 0.2, 0.5, 0.9, 1.2, 1.4, 1.5, 1.6,
           1.8, 1.7, 1.4, 1.3, 1.3, 1.5, 1.7, 1.8, 1.6, 1.2, 0.8, 0.45)  # fmt: skip
_WEEKDAY = (0.95, 0.95, 1.0, 1.0, 1.15, 1.1, 0.85)
_PAYDAY_BOOST = 1.35  # 15th and last day of the month (quincena)
_AFTER_PAYDAY_BOOST = 1.15
_PAYDAY_DEPOSIT_SHARE = 0.08

# Fraud mix: share of fraudulent *transactions* and mean fraudulent transactions/episode.
_FRAUD_MIX = {
    "card_testing": 0.30,
    "account_takeover": 0.20,
    "compromised_merchant": 0.20,
    "amount_spike": 0.15,
    "impossible_travel": 0.15,
}
_EPISODE_GAP_SHAPE = 4.0
_EPISODE_SIZE = {  # measured realised means (compromised_merchant: cards found at the terminal)
    "card_testing": 11.5,
    "account_takeover": 2.3,
    "compromised_merchant": 14.0,
    "amount_spike": 2.0,
    "impossible_travel": 1.5,
}

_REPORT_MEDIAN_S = 2 * DAY
_REPORT_SIGMA = 1.0
_REPORT_MIN_S = 3600
_REPORT_MAX_S = 30 * DAY
_NEW_DEVICE_U = 0.997  # 0.3% of genuine digital transactions come from a new device
_TRIP_PROBABILITY = 0.003  # per card-present purchase made at home
_TRAVEL_KMH = 600.0  # legit travel: flight/bus speed, plus an hour of slack
_IMPOSSIBLE_KMH = 900.0


def _haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0088 * math.asin(min(1.0, math.sqrt(h)))


_ISO_DAY_CACHE: dict[int, str] = {}


def iso(t: int | float) -> str:
    """Epoch seconds -> ``'2026-01-01T09:30:00-05:00'`` (Lima time, whole seconds)."""
    local = int(t) + _UTC_OFFSET_S
    day, sod = divmod(local, DAY)
    prefix = _ISO_DAY_CACHE.get(day)
    if prefix is None:
        prefix = (_EPOCH + timedelta(days=day)).strftime("%Y-%m-%dT")
        _ISO_DAY_CACHE[day] = prefix
    h, rem = divmod(sod, 3600)
    m, s = divmod(rem, 60)
    return f"{prefix}{h:02d}:{m:02d}:{s:02d}-05:00"


class _Clock:
    """Maps a unit-rate Poisson process onto event time with hourly intensity factors."""

    def __init__(self, start: int, per_second: float) -> None:
        self.start = start
        self.per_second = per_second
        hourly = np.asarray(_HOURLY) / np.mean(_HOURLY)
        weekday = np.asarray(_WEEKDAY) / np.mean(_WEEKDAY)
        self._hourly = hourly.tolist()
        self._weekday = weekday.tolist()
        # A month has 2 paydays and 2 days-after: keep the monthly mean intensity at 1.
        self._norm = 1.0 + (2 * (_PAYDAY_BOOST - 1) + 2 * (_AFTER_PAYDAY_BOOST - 1)) / 30.4
        self.lam = np.empty(0)
        self.cum = np.zeros(1)
        self.payday = np.zeros(0, dtype=bool)

    def _extend(self, hours: int) -> None:
        k0 = len(self.lam)
        lam = np.empty(hours)
        pay = np.zeros(hours, dtype=bool)
        for j in range(hours):
            dt = datetime.fromtimestamp(self.start + (k0 + j) * 3600 + 1800, tz=LIMA)
            f = self._hourly[dt.hour] * self._weekday[dt.weekday()]
            last = (dt + timedelta(days=1)).day == 1
            if dt.day == 15 or last:
                f *= _PAYDAY_BOOST
                pay[j] = True
            elif dt.day in (16, 1):
                f *= _AFTER_PAYDAY_BOOST
            lam[j] = f / self._norm * self.per_second
        self.lam = np.concatenate([self.lam, lam])
        self.cum = np.concatenate([self.cum, self.cum[-1] + np.cumsum(lam * 3600.0)])
        self.payday = np.concatenate([self.payday, pay])

    def times(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Poisson points (cumulative intensity) -> (event times, is-payday flags)."""
        while points[-1] >= self.cum[-1]:
            self._extend(max(24 * 7, len(self.lam)))
        k = np.searchsorted(self.cum, points, side="right") - 1
        t = self.start + k * 3600.0 + (points - self.cum[k]) / self.lam[k]
        return np.floor(t).astype(np.int64), self.payday[k]


# Heap items: (time, seq, kind, payload). kind 0 = transaction, 1 = label.
_TX, _LABEL = 0, 1


class _Simulator:
    """Builds the world from the seed, then streams events (see the module docstring)."""

    def __init__(self, cfg: SimConfig) -> None:
        self.cfg = cfg
        self.rng = np.random.default_rng([cfg.seed, 0x4B554E])
        self.pr = random.Random(cfg.seed * 7919 + 17)
        self.start = int(cfg.start)
        self.n = 0  # transactions emitted
        self.seq = 0  # heap tie-breaker (deterministic)
        self.heap: list[tuple[int, int, int, Any]] = []
        self.last_label = ""  # label_time of the transaction just yielded (for files)
        self.cm_active: dict[int, list[Any]] = {}  # compromised merchant -> [end, cards left]
        self._build_merchants()
        self._build_accounts()
        self._calibrate()

    # ------------------------------------------------------------------ world building
    def _build_merchants(self) -> None:
        rng, pr = self.rng, self.pr
        n = self.cfg.n_merchants
        ncat = len(_CATEGORIES)
        share = np.array([c[2] for c in _CATEGORIES])
        cats = np.concatenate([np.arange(ncat), rng.choice(ncat, n - ncat, p=share / share.sum())])
        city_share = np.array([c[3] for c in _CITIES])
        cities = rng.choice(len(_CITIES), n, p=city_share / city_share.sum())
        spread = np.array([c[4] for c in _CITIES])
        centre = np.array([[c[1], c[2]] for c in _CITIES])
        coords = centre[cities] + rng.normal(0.0, 1.0, (n, 2)) * spread[cities, None]
        popularity = rng.lognormal(0.0, 1.0, n)
        self.m_id: list[str] = []
        self.m_cat: list[str] = []
        self.m_city: list[int] = []
        self.m_lat: list[float] = []
        self.m_lon: list[float] = []
        self.m_median: list[float] = []
        self.m_sigma: list[float] = []
        self.m_pop: list[float] = popularity.tolist()
        ncity = len(_CITIES)
        self.pos_by_city: list[list[int]] = [[] for _ in range(ncity)]
        self.pos_by_city_cat: list[dict[str, list[int]]] = [{} for _ in range(ncity)]
        self.atm_by_city: list[list[int]] = [[] for _ in range(ncity)]
        self.branch_by_city: list[list[int]] = [[] for _ in range(ncity)]
        self.online_by_cat: dict[str, list[int]] = {}
        self.billers_by_cat: dict[str, list[int]] = {}
        lima_done: set[str] = set()
        for i in range(n):
            name, kind, _, median, sigma, _ = _CATEGORIES[int(cats[i])]
            city = int(cities[i])
            lat, lon = float(coords[i, 0]), float(coords[i, 1])
            if kind in ("online", "biller"):
                city, lat, lon = 0, _CITIES[0][1], _CITIES[0][2]  # head office in Lima
            elif kind not in lima_done:  # Lima always has every kind of terminal
                lima_done.add(kind)
                city = 0
                lat = _CITIES[0][1] + pr.gauss(0, _CITIES[0][4])
                lon = _CITIES[0][2] + pr.gauss(0, _CITIES[0][4])
            self.m_id.append(f"{_PREFIX[kind]}-{i:06d}")
            self.m_cat.append(name)
            self.m_city.append(city)
            self.m_lat.append(round(lat, 5))
            self.m_lon.append(round(lon, 5))
            self.m_median.append(median)
            self.m_sigma.append(sigma)
            if kind == "pos":
                self.pos_by_city[city].append(i)
                self.pos_by_city_cat[city].setdefault(name, []).append(i)
            elif kind == "atm":
                self.atm_by_city[city].append(i)
            elif kind == "branch":
                self.branch_by_city[city].append(i)
            elif kind == "online":
                self.online_by_cat.setdefault(name, []).append(i)
            else:
                self.billers_by_cat.setdefault(name, []).append(i)
        self.online_all = [i for v in self.online_by_cat.values() for i in v]
        # Cities where people can live/travel: some shops and an ATM.
        self.cities_ok = [c for c in range(ncity) if self.pos_by_city[c] and self.atm_by_city[c]]
        cw = [_CITIES[c][3] for c in self.cities_ok]
        self.cities_ok_cum = list(np.cumsum(cw) / sum(cw))
        self.dist_km = [[_haversine_km(a[1], a[2], b[1], b[2]) for b in _CITIES] for a in _CITIES]
        self.travel_s = [[int(d / _TRAVEL_KMH * 3600) + 3600 if d > 50 else 0 for d in row]
                         for row in self.dist_km]  # fmt: skip

    def _pick_weighted(self, items: list[int]) -> int:
        weights = [self.m_pop[i] for i in items]
        return self.pr.choices(items, weights=weights, k=1)[0]

    def _build_accounts(self) -> None:
        cfg, rng, pr = self.cfg, self.rng, self.pr
        n = cfg.accounts
        ok = np.array(self.cities_ok)
        w = np.array([_CITIES[c][3] for c in self.cities_ok])
        home = ok[rng.choice(len(ok), n, p=w / w.sum())]
        centre = np.array([[c[1], c[2]] for c in _CITIES])
        spread = np.array([c[4] for c in _CITIES])
        coords = centre[home] + rng.normal(0.0, 1.0, (n, 2)) * spread[home, None]
        atype = rng.choice(3, n, p=_ACCOUNT_TYPE_SHARE)
        inst = rng.choice(len(_INSTITUTIONS), n, p=_INSTITUTION_SHARE)
        new = rng.random(n) < 0.08
        age = np.where(new, rng.integers(1, 90, n), rng.integers(90, 5000, n))
        spend = rng.lognormal(0.0, 0.5, n)
        activity = rng.gamma(2.0, 0.5, n)  # mean 1: some accounts are much busier
        base_balance = np.where(atype == 2, 5000.0, np.where(atype == 1, 4000.0, 2500.0))
        balance = base_balance * spend * rng.lognormal(0.0, 0.6, n)
        self.a_id = [f"acc-{i:07d}" for i in range(n)]
        self.a_type = [_ACCOUNT_TYPES[k] for k in atype.tolist()]
        self.a_type_code = atype.astype(np.int64)
        self.a_inst = [_INSTITUTIONS[k] for k in inst.tolist()]
        self.a_home = home.tolist()
        self.a_lat = np.round(coords[:, 0], 5).tolist()
        self.a_lon = np.round(coords[:, 1], 5).tolist()
        self.a_age = age.tolist()
        self.a_spend = spend.tolist()
        self.a_balance = balance.tolist()
        self.a_income = (1800.0 * spend).tolist()
        self.a_big = np.maximum(2500.0, 2500.0 * spend).tolist()  # "high amount" for a call
        self.a_cum = np.cumsum(activity) / activity.sum()
        # Current location (changes during trips) and fraud bookkeeping.
        self.a_city = list(self.a_home)
        self.a_cur_lat = list(self.a_lat)
        self.a_cur_lon = list(self.a_lon)
        self.a_trip_end = [0] * n
        self.a_last_phys = [-(10**9)] * n
        self.a_busy = [0] * n
        # Usual merchants, billers, payees, devices and IPs.
        visit_pos = [(c[0], c[5]) for c in _CATEGORIES if c[1] == "pos"]
        pos_names = [v[0] for v in visit_pos]
        pos_w = [v[1] for v in visit_pos]
        online_names = [c[0] for c in _CATEGORIES if c[1] == "online"]
        online_w = [c[5] for c in _CATEGORIES if c[1] == "online"]
        biller_names = [c[0] for c in _CATEGORIES if c[1] == "biller"]
        biller_w = [c[5] for c in _CATEGORIES if c[1] == "biller"]
        self.a_pos: list[list[int]] = []
        self.a_online: list[list[int]] = []
        self.a_billers: list[list[int]] = []
        self.a_atm: list[int] = []
        self.a_payees: list[list[str]] = []
        self.a_devices: list[list[str]] = []
        self.a_ips: list[list[str]] = []
        hexdigits = "0123456789abcdef"
        for a in range(n):
            c = self.a_home[a]
            by_cat = self.pos_by_city_cat[c]
            usual = []
            for name in pr.choices(pos_names, weights=pos_w, k=pr.randint(8, 12)):
                usual.append(self._pick_weighted(by_cat.get(name) or self.pos_by_city[c]))
            self.a_pos.append(usual)
            self.a_online.append(
                [
                    pr.choice(self.online_by_cat[name])
                    for name in pr.choices(online_names, weights=online_w, k=pr.randint(2, 4))
                ]
            )
            self.a_billers.append(
                [
                    pr.choice(self.billers_by_cat[name])
                    for name in pr.choices(biller_names, weights=biller_w, k=pr.randint(1, 3))
                ]
            )
            self.a_atm.append(pr.choice(self.atm_by_city[c]))
            payees = []
            for _ in range(pr.randint(1, 4)):
                if n > 1 and pr.random() < 0.6:
                    payees.append(self.a_id[pr.randrange(n)])
                else:
                    payees.append(self._cci())
            self.a_payees.append(payees)
            self.a_devices.append(["dev-" + "".join(pr.choices(hexdigits, k=12)) for _ in range(pr.randint(1, 2))])
            self.a_ips.append([self._ip_home() for _ in range(pr.randint(1, 2))])
        self.carrier_ips = [self._ip_mobile() for _ in range(max(50, n // 20))]
        self.mules = [self._cci() for _ in range(max(20, n // 200))]

    def _cci(self) -> str:
        """A 20-digit interbank account code (CCI), as used for transfers to other banks."""
        return "cci-" + "".join(str(self.pr.randrange(10)) for _ in range(20))

    def _ip_home(self) -> str:
        pr = self.pr
        first = pr.choice((190, 181, 200, 201, 186))
        return f"{first}.{pr.randrange(1, 255)}.{pr.randrange(256)}.{pr.randrange(1, 255)}"

    def _ip_mobile(self) -> str:
        pr = self.pr
        first = pr.choice((179, 38, 191, 132))
        return f"{first}.{pr.randrange(1, 255)}.{pr.randrange(256)}.{pr.randrange(1, 255)}"

    def _ip_fraud(self) -> str:
        pr = self.pr
        if pr.random() < 0.5:
            return self._ip_home() if pr.random() < 0.5 else self._ip_mobile()
        first = pr.choice((45, 102, 185, 193, 5, 91, 103))
        return f"{first}.{pr.randrange(1, 255)}.{pr.randrange(256)}.{pr.randrange(1, 255)}"

    def _device_new(self) -> str:
        return "dev-" + "".join(self.pr.choices("0123456789abcdef", k=12))

    def _calibrate(self) -> None:
        """Episode start rate per slot so that frauds are ``fraud_rate`` of all transactions.

        Episodes of each typology start every ``gap`` slots (one slot = one would-be genuine
        transaction), with gamma(4)-distributed gaps: random, but steadier than a Poisson
        process, so that short runs stay close to the configured fraud rate.
        """
        r = self.cfg.fraud_rate
        ratio = {k: _FRAUD_MIX[k] / _EPISODE_SIZE[k] for k in FRAUD_TYPES}
        # Slots are consumed by episodes; impossible travel adds one genuine anchor back.
        k = sum(ratio.values()) - ratio["impossible_travel"]
        c = r / (1.0 - r + r * k)
        self.ep_mean_gap = [1.0 / (c * ratio[name]) for name in FRAUD_TYPES]
        self.ep_next = [self._episode_gap(k) * self.pr.random() for k in range(len(FRAUD_TYPES))]

    def _episode_gap(self, kind: int) -> float:
        return self.pr.gammavariate(_EPISODE_GAP_SHAPE, self.ep_mean_gap[kind] / _EPISODE_GAP_SHAPE)

    # ------------------------------------------------------------------ helpers
    def _push(self, t: int, kind: int, payload: Any) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (t, self.seq, kind, payload))

    def _age(self, a: int, t: int) -> int:
        return self.a_age[a] + (t - self.start) // DAY

    def _report_time(self, last_t: int) -> int:
        d = math.exp(math.log(_REPORT_MEDIAN_S) + _REPORT_SIGMA * self.pr.gauss(0.0, 1.0))
        return last_t + int(min(max(d, _REPORT_MIN_S), _REPORT_MAX_S - 3600))

    def _victim(self, t: int, credit_ok: bool = True) -> int | None:
        """An account free of other fraud episodes (activity-weighted), or None."""
        for _ in range(8):
            a = min(int(np.searchsorted(self.a_cum, self.pr.random(), side="right")),
                    len(self.a_cum) - 1)  # fmt: skip
            if self.a_busy[a] <= t and (credit_ok or self.a_type[a] != "credit"):
                return a
        return None

    def _tx(
        self,
        a: int,
        t: int,
        amount: float,
        ttype: str,
        channel: str,
        merchant: int | None = None,
        counterparty: str | None = None,
        device: str | None = None,
        ip: str | None = None,
        lat: float | None = None,
        lon: float | None = None,
    ) -> dict[str, Any]:
        """A transaction value (``transaction_id``/``account_balance`` filled on emission)."""
        v: dict[str, Any] = {
            "transaction_id": "",
            "account_id": self.a_id[a],
            "timestamp": iso(t),
            "amount": round(max(amount, 0.01), 2),
            "currency": "PEN",
            "transaction_type": ttype,
            "account_type": self.a_type[a],
            "channel": channel,
        }
        if merchant is not None:
            v["merchant_id"] = self.m_id[merchant]
            v["merchant_category"] = self.m_cat[merchant]
        if counterparty is not None:
            v["counterparty_account"] = counterparty
        v["account_balance"] = 0.0
        v["account_age_days"] = self._age(a, t)
        if ip is not None:
            v["ip_address"] = ip
            v["device_id"] = device
        if lat is not None:
            v["latitude"] = lat
            v["longitude"] = lon
        v["institution_id"] = self.a_inst[a]
        return v

    def _pos_in_city(self, city: int, categories: tuple[str, ...] | None = None) -> int:
        if categories:
            pool = [m for name in categories for m in self.pos_by_city_cat[city].get(name, ())]
            if pool:
                return self.pr.choice(pool)
        return self.pr.choice(self.pos_by_city[city])

    def _other_city(self, city: int) -> int:
        others = [c for c in self.cities_ok if c != city]
        if not others:
            return city
        return self.pr.choices(others, weights=[_CITIES[c][3] for c in others], k=1)[0]

    # ------------------------------------------------------------------ fraud episodes
    def _start_episode(self, kind: int, t: int) -> None:
        name = FRAUD_TYPES[kind]
        getattr(self, "_ep_" + name)(t)

    def _ep_card_testing(self, t: int) -> None:
        a = self._victim(t)
        if a is None:
            return
        pr = self.pr
        online = self.online_by_cat.get("digital_services", []) + self.online_by_cat.get("online_retail", [])
        merchants = pr.sample(online, min(len(online), pr.randint(1, 3)))
        device, ip = self._device_new(), self._ip_fraud()
        items = []
        tt = t
        for _ in range(pr.randint(6, 14)):
            amount = 1.0 if pr.random() < 0.2 else pr.uniform(0.5, 5.0)
            items.append((tt, self._tx(a, tt, amount, "purchase", "online", pr.choice(merchants),
                                       device=device, ip=ip)))  # fmt: skip
            tt += max(3, int(pr.expovariate(1 / 25)))
        big = self.online_by_cat.get("online_retail", []) + self.online_by_cat.get("travel", [])
        for _ in range(pr.randint(1, 2)):
            tt += pr.randint(120, 1800)
            amount = math.exp(math.log(900.0) + 0.5 * pr.gauss(0, 1))
            items.append((tt, self._tx(a, tt, amount, "purchase", "online", pr.choice(big),
                                       device=device, ip=ip)))  # fmt: skip
        self._schedule(a, items, "card_testing")

    def _ep_account_takeover(self, t: int) -> None:
        a = self._victim(t, credit_ok=False)
        if a is None:
            return
        pr = self.pr
        if pr.random() < 0.7:  # usually at night, Lima time
            local = t + _UTC_OFFSET_S
            sod = local % DAY
            midnight = t - sod
            night = midnight + pr.randint(1800, 16200)
            t = night if night >= t else night + DAY
        device, ip = self._device_new(), self._ip_fraud()
        channel = "mobile" if pr.random() < 0.6 else "online"
        if channel == "mobile":
            city = pr.choice(self.cities_ok)
            lat = round(_CITIES[city][1] + pr.gauss(0, _CITIES[city][4]), 5)
            lon = round(_CITIES[city][2] + pr.gauss(0, _CITIES[city][4]), 5)
        else:
            lat = lon = None
        mule = pr.choice(self.mules)
        items: list[tuple[int, dict[str, Any], float]] = []
        tt = t
        if pr.random() < 0.3:
            v = self._tx(a, tt, pr.uniform(1.0, 50.0), "transfer", channel, counterparty=mule,
                         device=device, ip=ip, lat=lat, lon=lon)  # fmt: skip
            items.append((tt, v, 0.0))
            tt += pr.randint(60, 900)
        for j in range(pr.randint(1, 3)):
            if j and pr.random() < 0.4:
                mule = pr.choice(self.mules)
            v = self._tx(a, tt, 0.0, "transfer", channel, counterparty=mule, device=device,
                         ip=ip, lat=lat, lon=lon)  # fmt: skip
            items.append((tt, v, pr.uniform(0.4, 0.9)))  # amount drains the balance then
            tt += pr.randint(60, 900)
        report = self._report_time(items[-1][0])
        for tt, v, drain in items:
            self._push(tt, _TX, (a, v, "account_takeover", report, drain))
        self.a_busy[a] = items[-1][0] + 3600

    def _ep_compromised_merchant(self, t: int) -> None:
        pr = self.pr
        # A terminal picked in proportion to its traffic: a usual shop of a random customer.
        a = min(int(np.searchsorted(self.a_cum, pr.random(), side="right")), len(self.a_cum) - 1)
        m = pr.choice(self.a_pos[a])
        if m in self.cm_active:
            return
        self.cm_active[m] = [t + pr.randint(DAY, 3 * DAY), pr.randint(5, 15)]

    def _skimmed(self, a: int, t: int, m: int) -> None:
        """A card used at a compromised terminal: cloned, and cashed out later."""
        state = self.cm_active[m]
        if t > state[0]:
            del self.cm_active[m]
            return
        pr = self.pr
        if self.a_busy[a] > t:
            return
        state[1] -= 1
        if state[1] <= 0:
            del self.cm_active[m]
        delay = math.exp(math.log(16 * 3600) + 0.7 * pr.gauss(0, 1))
        tt = t + int(min(max(delay, 2 * 3600), 4 * DAY))
        city = self._other_city(self.a_home[a])
        items = []
        atm = pr.random() < 0.6 and self.atm_by_city[city]
        for _ in range(pr.randint(1, 2)):
            if atm:
                terminal = pr.choice(self.atm_by_city[city])
                amount = 50.0 * pr.randint(6, 30)
                v = self._tx(a, tt, amount, "withdrawal", "atm", terminal,
                             lat=self.m_lat[terminal], lon=self.m_lon[terminal])  # fmt: skip
            else:
                shop = self._pos_in_city(city, ("electronics", "department_store"))
                amount = self.a_spend[a] * 700.0 * pr.uniform(1.0, 4.0)
                v = self._tx(a, tt, amount, "purchase", "pos", shop,
                             lat=self.m_lat[shop], lon=self.m_lon[shop])  # fmt: skip
            items.append((tt, v))
            tt += pr.randint(180, 1200)
        self._schedule(a, items, "compromised_merchant")

    def _ep_amount_spike(self, t: int) -> None:
        a = self._victim(t)
        if a is None:
            return
        pr = self.pr
        items = []
        tt = t
        online = pr.random() < 0.45
        device, ip = (self._device_new(), self._ip_fraud()) if online else (None, None)
        for _ in range(pr.randint(1, 3)):
            factor = pr.uniform(5.0, 20.0)
            if online:
                m = pr.choice(self.online_by_cat.get("online_retail", []) + self.online_by_cat.get(
                    "travel", []))  # fmt: skip
                amount = self.a_spend[a] * self.m_median[m] * factor
                v = self._tx(a, tt, amount, "purchase", "online", m, device=device, ip=ip)
            else:
                m = self._pos_in_city(self.a_city[a], ("electronics", "department_store",
                                                       "clothing"))  # fmt: skip
                amount = self.a_spend[a] * self.m_median[m] * factor
                v = self._tx(a, tt, amount, "purchase", "pos", m, lat=self.m_lat[m],
                             lon=self.m_lon[m])  # fmt: skip
            items.append((tt, v))
            tt += pr.randint(600, 3 * 3600)
        self._schedule(a, items, "amount_spike")

    def _ep_impossible_travel(self, t: int) -> None:
        a = self._victim(t)
        if a is None:
            return
        pr = self.pr
        city = self.a_city[a]
        usual = self.a_pos[a] if city == self.a_home[a] else self.pos_by_city[city]
        anchor = pr.choice(usual)
        far = [c for c in self.cities_ok if self.dist_km[city][c] > 350]
        if not far:
            return
        dest = pr.choice(far)
        first_gap = pr.randint(5 * 60, 40 * 60)
        n_fraud = pr.randint(1, 2)
        second_gap = pr.randint(120, 600) if n_fraud == 2 else 0
        # Choose the terminals, then make sure even the last fraudulent transaction, seen
        # from anywhere within 60 km of the anchor, needs > 1.15 x 900 km/h.
        terminals = []
        for _ in range(n_fraud):
            if pr.random() < 0.5:
                terminals.append(pr.choice(self.atm_by_city[dest]))
            else:
                terminals.append(self._pos_in_city(dest, ("electronics", "department_store",
                                                          "supermarket", "fuel")))  # fmt: skip
        d = min(_haversine_km(self.m_lat[anchor], self.m_lon[anchor], self.m_lat[m], self.m_lon[m])
                for m in terminals)  # fmt: skip
        max_span = (d - 60.0) / (1.15 * _IMPOSSIBLE_KMH) * 3600
        if max_span < 5 * 60 + second_gap:
            second_gap = 0
            terminals = terminals[:1]
        if max_span < 5 * 60:
            return
        first_gap = min(first_gap, int(max_span) - second_gap)
        z = pr.gauss(0, 1)
        spend = self.a_spend[a]
        genuine = self._tx(a, t, spend * self.m_median[anchor] * math.exp(self.m_sigma[anchor] * z),
                           "purchase", "pos", anchor, lat=self.m_lat[anchor],
                           lon=self.m_lon[anchor])  # fmt: skip
        self._push(t, _TX, (a, genuine, None, 0, 0.0))
        items = []
        tt = t + first_gap
        for m in terminals:
            if self.m_cat[m] == "atm":
                v = self._tx(a, tt, 50.0 * pr.randint(4, 30), "withdrawal", "atm", m,
                             lat=self.m_lat[m], lon=self.m_lon[m])  # fmt: skip
            else:
                amount = spend * self.m_median[m] * pr.uniform(1.0, 6.0)
                v = self._tx(a, tt, amount, "purchase", "pos", m, lat=self.m_lat[m],
                             lon=self.m_lon[m])  # fmt: skip
            items.append((tt, v))
            tt += second_gap
        self._schedule(a, items, "impossible_travel")

    def _schedule(self, a: int, items: list[tuple[int, dict[str, Any]]], fraud_type: str) -> None:
        report = self._report_time(items[-1][0])
        for tt, v in items:
            self._push(tt, _TX, (a, v, fraud_type, report, 0.0))
        self.a_busy[a] = max(self.a_busy[a], items[-1][0] + 3600)

    # ------------------------------------------------------------------ emission
    def _emit_heap_tx(self, t: int, payload: Any) -> SimEvent:
        a, v, fraud_type, report, drain = payload
        self.n += 1
        v["transaction_id"] = f"tx-{self.cfg.seed}-{self.n:09d}"
        balance = self.a_balance[a]
        if drain:
            v["amount"] = round(max(100.0 + self.pr.random() * 100.0, balance * drain), 2)
        amount = v["amount"]
        if amount > balance:  # money arrived from elsewhere (salary at another bank, ...)
            balance += max(self.a_income[a], amount - balance + self.a_income[a] * 0.5)
        v["account_balance"] = round(balance, 2)
        self.a_balance[a] = balance - amount
        if fraud_type is None:
            self.a_last_phys[a] = t
            self.last_label = ""
            return SimEvent(float(t), "transaction", v["account_id"], v, False, None)
        self.last_label = ""
        if self.pr.random() >= self.cfg.unreported_share:
            at = min(report + self.pr.randint(0, 900), t + _REPORT_MAX_S)
            self.last_label = label_at = iso(at)
            self._push(at, _LABEL, {"transaction_id": v["transaction_id"],
                                    "account_id": v["account_id"], "is_fraud": True,
                                    "reported_at": label_at})  # fmt: skip
        return SimEvent(float(t), "transaction", v["account_id"], v, True, fraud_type)

    def _genuine_label(self, t: int, v: dict[str, Any]) -> None:
        pr = self.pr
        d = math.exp(math.log(4 * 3600) + pr.gauss(0, 1))
        at = t + int(min(max(d, 600), 7 * DAY))
        self.last_label = label_at = iso(at)
        self._push(at, _LABEL, {"transaction_id": v["transaction_id"],
                                "account_id": v["account_id"], "is_fraud": False,
                                "reported_at": label_at})  # fmt: skip

    def _start_trip(self, a: int, t: int) -> None:
        home = self.a_home[a]
        dest = self._other_city(home)
        if dest == home or t - self.a_last_phys[a] < self.travel_s[home][dest]:
            return
        pr = self.pr
        self.a_city[a] = dest
        self.a_cur_lat[a] = round(_CITIES[dest][1] + pr.gauss(0, _CITIES[dest][4]), 5)
        self.a_cur_lon[a] = round(_CITIES[dest][2] + pr.gauss(0, _CITIES[dest][4]), 5)
        self.a_trip_end[a] = t + pr.randint(2 * DAY, 7 * DAY)

    def events(self) -> Iterator[SimEvent]:
        """The event stream. One flat hot loop: local names, few calls, for speed."""
        cfg, rng, pr = self.cfg, self.rng, self.pr
        total = cfg.transactions
        clock = _Clock(self.start, cfg.accounts * cfg.tx_per_account_per_day / DAY)
        heap = self.heap
        pop = heapq.heappop
        genuine_share = cfg.genuine_label_share
        seed = cfg.seed
        ep_next = self.ep_next
        next_episode = min(ep_next)
        slot = 0
        combo_cum = []
        for k in _ACCOUNT_TYPES:
            cum = np.cumsum(_COMBO_SHARE[k]) / sum(_COMBO_SHARE[k])
            cum[cum >= cum[-1] - 1e-9] = 1.0 + 1e-9  # never pick a zero-share tail combo
            combo_cum.append(cum)
        a_id, a_type, a_inst, a_age = self.a_id, self.a_type, self.a_inst, self.a_age
        a_balance, a_income, a_spend = self.a_balance, self.a_income, self.a_spend
        a_big = self.a_big
        a_pos, a_online, a_billers = self.a_pos, self.a_online, self.a_billers
        a_payees, a_devices, a_ips = self.a_payees, self.a_devices, self.a_ips
        a_home, a_city, a_trip_end = self.a_home, self.a_city, self.a_trip_end
        a_last = self.a_last_phys
        a_cur_lat, a_cur_lon, a_lat, a_lon = self.a_cur_lat, self.a_cur_lon, self.a_lat, self.a_lon
        m_id, m_cat, m_lat, m_lon = self.m_id, self.m_cat, self.m_lat, self.m_lon
        m_median, m_sigma = self.m_median, self.m_sigma
        pos_by_city, atm_by_city = self.pos_by_city, self.atm_by_city
        branch_by_city = self.branch_by_city
        online_all = self.online_all
        carrier_ips, travel_s = self.carrier_ips, self.travel_s
        cm_active = self.cm_active
        exp = math.exp
        start = self.start
        point = 0.0
        chunk = int(min(8192, max(256, total // 8)))
        while self.n < total:
            gaps = rng.exponential(1.0, chunk)
            points = point + np.cumsum(gaps)
            point = float(points[-1])
            ts_arr, payday_arr = clock.times(points)
            acc_arr = np.minimum(np.searchsorted(self.a_cum, rng.random(chunk), side="right"),
                                 cfg.accounts - 1)  # fmt: skip
            u_combo = rng.random(chunk)
            codes = np.empty(chunk, dtype=np.int64)
            types = self.a_type_code[acc_arr]
            for k in range(3):
                mask = types == k
                codes[mask] = np.searchsorted(combo_cum[k], u_combo[mask], side="right")
            ts = ts_arr.tolist()
            accs = acc_arr.tolist()
            codes_l = codes.tolist()
            paydays = payday_arr.tolist()
            u_pick = rng.random(chunk).tolist()
            u_aux = rng.random(chunk).tolist()
            u_aux2 = rng.random(chunk).tolist()
            zs = rng.standard_normal(chunk).tolist()
            for i in range(chunk):
                t = ts[i]
                while heap and heap[0][0] <= t:
                    ht, _, kind, payload = pop(heap)
                    if kind == _LABEL:
                        yield SimEvent(float(ht), "label", payload["account_id"], payload, False,
                                       None)  # fmt: skip
                    else:
                        ev = self._emit_heap_tx(ht, payload)
                        yield ev
                        if self.n >= total:
                            break
                if self.n >= total:
                    break
                slot += 1
                if slot >= next_episode:
                    k = ep_next.index(next_episode)
                    ep_next[k] += self._episode_gap(k)
                    next_episode = min(ep_next)
                    self._start_episode(k, t)
                    continue
                a = accs[i]
                code = codes_l[i]
                up = u_pick[i]
                ux = u_aux[i]
                z = zs[i]
                if paydays[i] and u_aux2[i] < _PAYDAY_DEPOSIT_SHARE and a_type[a] != "credit":
                    code = 11 if ux < 0.4 else 12
                ttype, channel = _COMBOS[code]
                merchant = cp = ip = device = lat = lon = None
                if code in _LOCATED:
                    city = a_city[a]
                    te = a_trip_end[a]
                    if te and t >= te and t - a_last[a] >= travel_s[city][a_home[a]]:
                        city = a_city[a] = a_home[a]
                        a_trip_end[a] = 0
                        a_cur_lat[a], a_cur_lon[a] = a_lat[a], a_lon[a]
                    elif code == 0 and not te and ux < _TRIP_PROBABILITY:
                        self._start_trip(a, t)
                        city = a_city[a]
                    a_last[a] = t
                    at_home = city == a_home[a]
                spend = a_spend[a]
                if code == 0 or code == 2:  # purchase at a physical merchant
                    if at_home and ux < 0.85:
                        usual = a_pos[a]
                        merchant = usual[int(up * len(usual))]
                    else:
                        pool = pos_by_city[city]
                        merchant = pool[int(up * len(pool))]
                    amount = spend * m_median[merchant] * exp(m_sigma[merchant] * z)
                    lat, lon = m_lat[merchant], m_lon[merchant]
                    if code == 2:
                        devs = a_devices[a]
                        device = devs[int(up * 7919) % len(devs)]
                        u2 = u_aux2[i]
                        ip = carrier_ips[int(u2 * 7919) % len(carrier_ips)] if u2 < 0.3 else (
                            a_ips[a][0])  # fmt: skip
                elif code == 1:  # online purchase
                    if ux < 0.75:
                        usual = a_online[a]
                        merchant = usual[int(up * len(usual))]
                    else:
                        merchant = online_all[int(up * len(online_all))]
                    amount = spend * m_median[merchant] * exp(m_sigma[merchant] * z)
                    devs = a_devices[a]
                    u2 = u_aux2[i]
                    if u2 > _NEW_DEVICE_U:  # a new phone/browser: it becomes a usual one
                        devs.append(self._device_new())
                    device = devs[-1] if u2 > _NEW_DEVICE_U else devs[int(up * 7919) % len(devs)]
                    ips = a_ips[a]
                    ip = ips[int(up * 104729) % len(ips)] if u2 < 0.9 else (
                        carrier_ips[int(u2 * 7919) % len(carrier_ips)])  # fmt: skip
                elif code == 3 or code == 11:  # ATM
                    if at_home and ux < 0.7:
                        merchant = self.a_atm[a]
                    else:
                        pool = atm_by_city[city]
                        merchant = pool[int(up * len(pool))]
                    lat, lon = m_lat[merchant], m_lon[merchant]
                    if code == 3:
                        amount = spend * 200.0 * exp(0.6 * z)  # ATM: multiples of S/ 10
                        amount = 3000.0 if amount > 3000.0 else max(20.0, round(amount, -1))
                    else:
                        amount = spend * 900.0 * exp(0.5 * z)
                elif code == 4 or code == 7 or code == 10 or code == 12:  # branch
                    pool = branch_by_city[city]
                    if not pool and (code == 4 or code == 12):  # no branch in town: use an ATM
                        pool = atm_by_city[city]
                        channel = "atm"
                    if pool:
                        branch = pool[int(up * len(pool))]
                        lat, lon = m_lat[branch], m_lon[branch]
                        if code == 4 or code == 12:
                            merchant = branch
                    else:  # a banking agent ("agente") near where the customer is
                        lat, lon = a_cur_lat[a], a_cur_lon[a]
                    if code == 4:
                        amount = spend * 600.0 * exp(0.8 * z)
                    elif code == 12:
                        amount = spend * 1200.0 * exp(0.6 * z)
                    elif code == 7:
                        amount = spend * 800.0 * exp(0.9 * z)
                        payees = a_payees[a]
                        cp = payees[int(up * len(payees))]
                    else:
                        billers = a_billers[a]
                        merchant = billers[int(up * len(billers))]
                        amount = m_median[merchant] * (spend**0.5) * exp(m_sigma[merchant] * z)
                else:  # 5, 6 transfers; 8, 9 bill payments (digital)
                    devs = a_devices[a]
                    u2 = u_aux2[i]
                    if u2 > _NEW_DEVICE_U:  # a new phone/browser: it becomes a usual one
                        devs.append(self._device_new())
                    device = devs[-1] if u2 > _NEW_DEVICE_U else devs[int(up * 7919) % len(devs)]
                    if code == 5 or code == 9:
                        ip = carrier_ips[int(u2 * 7919) % len(carrier_ips)] if u2 < 0.3 else (
                            a_ips[a][int(up * 104729) % len(a_ips[a])])  # fmt: skip
                        jitter = (up - 0.5) * 0.004
                        lat = round(a_cur_lat[a] + jitter, 5)
                        lon = round(a_cur_lon[a] - jitter * 0.7, 5)
                    else:
                        ips = a_ips[a]
                        ip = ips[int(up * 104729) % len(ips)]
                    if code == 5 or code == 6:
                        amount = spend * 250.0 * exp(1.0 * z)
                        if ux > 0.88:  # a new payee now and then
                            cp = a_id[int(up * 1e6) % len(a_id)] if ux > 0.94 else self._cci()
                        else:
                            payees = a_payees[a]
                            cp = payees[int(up * len(payees))]
                    else:
                        billers = a_billers[a]
                        merchant = billers[int(up * len(billers))]
                        amount = m_median[merchant] * (spend**0.5) * exp(m_sigma[merchant] * z)
                if amount < 0.5:
                    amount = 0.5
                amount = round(amount, 2)
                self.n += 1
                v: dict[str, Any] = {
                    "transaction_id": f"tx-{seed}-{self.n:09d}",
                    "account_id": a_id[a],
                    "timestamp": iso(t),
                    "amount": amount,
                    "currency": "PEN",
                    "transaction_type": ttype,
                    "account_type": a_type[a],
                    "channel": channel,
                }
                if merchant is not None:
                    v["merchant_id"] = m_id[merchant]
                    v["merchant_category"] = m_cat[merchant]
                if cp is not None:
                    v["counterparty_account"] = cp
                balance = a_balance[a]
                if code >= 11:
                    a_balance[a] = balance + amount
                else:
                    if amount > balance:
                        balance += max(a_income[a], amount - balance + a_income[a] * 0.5)
                    a_balance[a] = balance - amount
                v["account_balance"] = round(balance, 2)
                v["account_age_days"] = a_age[a] + (t - start) // DAY
                if ip is not None:
                    v["ip_address"] = ip
                    v["device_id"] = device
                if lat is not None:
                    v["latitude"] = lat
                    v["longitude"] = lon
                v["institution_id"] = a_inst[a]
                self.last_label = ""
                if amount >= a_big[a] and pr.random() < genuine_share:
                    self._genuine_label(t, v)
                if code == 0 and cm_active and merchant in cm_active:
                    self._skimmed(a, t, merchant)
                yield SimEvent(float(t), "transaction", a_id[a], v, False, None)
        # All transactions are out: flush the labels still pending (in time order).
        while heap:
            ht, _, kind, payload = pop(heap)
            if kind == _LABEL:
                yield SimEvent(float(ht), "label", payload["account_id"], payload, False, None)


# ----------------------------------------------------------------------------- public API


def generate(cfg: SimConfig) -> Iterator[SimEvent]:
    """Stream the simulated transactions and labels in non-decreasing event time.

    Deterministic for a config; memory stays bounded (pending labels and fraud episodes
    only), so millions of transactions can be streamed.
    """
    return _Simulator(cfg).events()


_FORMATS = {".csv": "csv", ".csv.gz": "csv", ".parquet": "parquet", ".pq": "parquet"}
_PYARROW_MISSING = (
    "Parquet output needs the optional package pyarrow, which is not installed: "
    "run `pip install pyarrow`, or write CSV instead (--out FILE.csv or FILE.csv.gz)"
)


def output_format(path: str | Path, fmt: str | None = None) -> str:
    """``'csv'`` or ``'parquet'`` for a path (by extension) or an explicit ``fmt``.

    Raises :class:`OutputFormatError` for an unknown format or when Parquet is asked for
    and ``pyarrow`` is not importable.
    """
    if fmt is None:
        name = str(path).lower()
        for ext, kind in _FORMATS.items():
            if name.endswith(ext):
                fmt = kind
                break
        else:
            raise OutputFormatError(
                f"cannot tell the output format of {str(path)!r}: use a file name ending in {', '.join(_FORMATS)}"
            )
    fmt = fmt.lower()
    if fmt not in ("csv", "parquet"):
        raise OutputFormatError(f"unknown output format {fmt!r}: use 'csv' or 'parquet'")
    if fmt == "parquet":
        try:
            import pyarrow  # noqa: F401
            import pyarrow.parquet  # noqa: F401
        except ImportError:
            raise OutputFormatError(_PYARROW_MISSING) from None
    return fmt


def write_file(cfg: SimConfig, path: str | Path, fmt: str | None = None, progress: bool = True) -> int:
    """Write one row per simulated transaction with the ground truth; return rows written.

    Columns are :data:`FILE_COLUMNS`: every Transaction field, then ``is_fraud`` (0/1),
    ``fraud_type`` and ``label_time`` (the ``reported_at`` of the label the stream sends
    for this transaction; empty if none). CSV (``.csv``, ``.csv.gz``) uses the stdlib;
    Parquet (``.parquet``, ``.pq``) needs ``pyarrow``. Rows are in event-time order.
    """
    kind = output_format(path, fmt)
    path = Path(path)
    if path.parent and not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    sim = _Simulator(cfg)
    bar = Progress(total=cfg.transactions, desc=f"simulate -> {path.name}", unit="tx",
                   enabled=progress)  # fmt: skip
    with bar:
        if kind == "csv":
            return _write_csv(sim, path, bar)
        return _write_parquet(sim, path, bar)


def _rows(sim: _Simulator, bar: Progress) -> Iterator[list[Any]]:
    fields = TRANSACTION_FIELDS
    pending = 0
    for ev in sim.events():
        if ev.kind != "transaction":
            continue
        v = ev.value
        row = [v.get(f) for f in fields]
        row.append(1 if ev.is_fraud else 0)
        row.append(ev.fraud_type)
        row.append(sim.last_label or None)
        yield row
        pending += 1
        if pending == 1000:
            bar.update(pending)
            pending = 0
    bar.update(pending)


def _write_csv(sim: _Simulator, path: Path, bar: Progress) -> int:
    n = 0
    if str(path).lower().endswith(".gz"):
        fh: Any = gzip.open(path, "wt", newline="", encoding="utf-8", compresslevel=3)
    else:
        fh = open(path, "w", newline="", encoding="utf-8")
    with fh:
        writer = csv.writer(fh)
        writer.writerow(FILE_COLUMNS)
        for row in _rows(sim, bar):
            writer.writerow(["" if x is None else x for x in row])
            n += 1
    return n


def _write_parquet(sim: _Simulator, path: Path, bar: Progress) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    floats = {"amount", "account_balance", "latitude", "longitude"}
    ints = {"account_age_days": pa.int32(), "is_fraud": pa.int8()}
    schema = pa.schema(
        [(name, pa.float64() if name in floats else ints.get(name, pa.string())) for name in FILE_COLUMNS]
    )
    n = 0
    batch: list[list[Any]] = []
    with pq.ParquetWriter(str(path), schema, compression="zstd") as writer:
        for row in _rows(sim, bar):
            batch.append(row)
            if len(batch) == 65_536:
                writer.write_table(_table(pa, schema, batch))
                n += len(batch)
                batch = []
        if batch or n == 0:
            writer.write_table(_table(pa, schema, batch))
            n += len(batch)
    return n


def _table(pa: Any, schema: Any, rows: list[list[Any]]) -> Any:
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(FILE_COLUMNS)
    return pa.Table.from_arrays(
        [pa.array(list(col), type=field.type) for col, field in zip(columns, schema, strict=True)],
        schema=schema,
    )


class ProduceError(RuntimeError):
    """Some messages could not be delivered to Kafka."""


def produce(
    events: Iterable[SimEvent],
    producer_config: dict[str, str],
    topic_transactions: str,
    topic_labels: str,
    rate: float = 0.0,
    progress: bool = True,
    stop: threading.Event | None = None,
    total: int | None = None,
) -> dict[str, int]:
    """Send events to Kafka: key = account_id (UTF-8), value = the JSON object.

    ``rate`` paces transactions per wall-clock second (a token bucket holding at most one
    second of burst; 0 = as fast as possible); labels are sent as soon as they come up in
    the stream. Stops early when ``stop`` is set. Flushes at the end (also on errors or
    KeyboardInterrupt) and raises :class:`ProduceError` if deliveries failed. Returns
    ``{"transactions": n, "labels": m, "frauds": k}``. ``total`` (optional) is the number
    of transactions expected, for the progress bar.
    """
    from confluent_kafka import Producer

    failures: list[str] = []

    def on_delivery(err: Any, _msg: Any) -> None:
        if err is not None:
            failures.append(str(err))

    conf: dict[str, Any] = {
        "client.id": "kuntur-simulate",
        "linger.ms": 20,
        "batch.num.messages": 10_000,
        "queue.buffering.max.messages": 500_000,
        "delivery.report.only.error": True,
    }
    conf.update(producer_config)
    conf["on_delivery"] = on_delivery
    producer = Producer(conf)
    counts = {"transactions": 0, "labels": 0, "frauds": 0}
    dumps = orjson.dumps
    wait = stop.wait if stop is not None else time.sleep
    clock = time.monotonic
    began = clock()
    sent_at_reset = 0
    bar = Progress(total=total, desc="simulate -> kafka", unit="tx", enabled=progress)
    step = 0
    completed = False
    try:
        with bar:
            for ev in events:
                if stop is not None and stop.is_set():
                    break
                if ev.kind == "transaction":
                    topic = topic_transactions
                    if rate > 0:
                        due = began + (counts["transactions"] - sent_at_reset) / rate
                        now = clock()
                        if due - now > 0.002:
                            wait(due - now)
                            if stop is not None and stop.is_set():
                                break
                        elif now - due > 1.0:  # fell behind: allow at most 1 s of burst
                            began, sent_at_reset = now - 1.0, counts["transactions"]
                    counts["transactions"] += 1
                    counts["frauds"] += ev.is_fraud
                    step += 1
                    if step == 256:
                        bar.update(step)
                        step = 0
                else:
                    topic = topic_labels
                    counts["labels"] += 1
                value, key = dumps(ev.value), ev.key.encode()
                while True:
                    try:
                        producer.produce(topic, value, key)
                        break
                    except BufferError:  # local queue full: let librdkafka drain it
                        producer.poll(0.05)
                producer.poll(0)
            bar.update(step)
        completed = True
    finally:  # deliver what was queued; on an exception (Ctrl-C) do not wait long
        remaining = producer.flush(30.0 if completed else 5.0)
    if failures or remaining:
        raise ProduceError(
            f"{len(failures)} message(s) failed delivery and {remaining} were still queued "
            f"after 30 s (first error: {failures[0] if failures else 'timeout'}); "
            f"sent {counts['transactions']} transactions and {counts['labels']} labels"
        )
    return counts


# ----------------------------------------------------------------------------- CLI

_DESCRIPTION = """\
Simulate realistic Peruvian-bank traffic (accounts in Lima, Arequipa, Trujillo, Chiclayo,
Piura, Cusco, Iquitos, ... at BCP, BBVA, Interbank, Scotiabank and BanBif; purchases,
transfers, withdrawals, bill payments and deposits over POS, online, ATM, mobile and
branch; quiet nights, busy paydays) and produce it to the transactions topic, with the
delayed fraud reports banks would send to the labels topic. Or, with --out, write a
labelled CSV/Parquet history for `kuntur replay` / `kuntur evaluate`.

Fraud typologies simulated (about 0.7% of transactions by default):
  card_testing          bursts of tiny online amounts at 1-3 merchants within minutes,
                        then a large purchase, from a new device/IP
  account_takeover      new device + new IP, mostly at night, transfers draining the
                        account to mule accounts
  compromised_merchant  a skimmed POS terminal: cards used there are cashed out in
                        another city hours to days later
  amount_spike          compromised card used for 5-20x the account's normal amounts
  impossible_travel     a card-present transaction far away minutes after a genuine one
                        (> 900 km/h, e.g. Lima then Iquitos 20 minutes later)

Fraud reports arrive 1 hour to 30 days later (median ~2 days); 10% are never reported.
The same --seed always gives the same traffic. Event time starts at --start and advances
with the simulated activity (--tx-per-account-per-day), independently of --rate.
"""


def _positive_int(text: str) -> int:
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def _merchant_count(text: str) -> int:
    value = _positive_int(text)
    if value < 20:
        raise argparse.ArgumentTypeError(f"must be >= 20 (one per category), got {value}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _float_in(low: float, high: float, low_open: bool, name: str) -> Any:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        ok = math.isfinite(value) and (value > low if low_open else value >= low)
        if not ok or value > high:
            bracket = "(" if low_open else "["
            raise argparse.ArgumentTypeError(f"{name} must be in {bracket}{low:g}, {high:g}], got {text}")
        return value

    return parse


def _positive_float(text: str) -> float:
    return _float_in(0.0, float("inf"), True, "value")(text)


def _start_time(text: str) -> float:
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an ISO-8601 date/time such as 2026-01-01 or 2026-01-01T00:00:00-05:00, got {text!r}"
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=LIMA)
    return dt.timestamp()


def _out_path(text: str) -> str:
    try:
        output_format(text)
    except OutputFormatError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``kuntur simulate`` to the ``kuntur`` command line."""
    p = subparsers.add_parser(
        "simulate",
        help="produce realistic synthetic transactions and delayed labels (or write a file)",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--rate", type=_float_in(0.0, 1e9, False, "--rate"), default=1000.0, metavar="TX_PER_S",
        help="transactions produced per wall-clock second (default 1000; 0 = as fast as "
        "possible). Labels are not paced. Ignored with --out.",
    )  # fmt: skip
    size = p.add_mutually_exclusive_group()
    size.add_argument(
        "--duration", type=_positive_float, metavar="SECONDS",
        help="run for about this many wall-clock seconds: transactions = rate x duration "
        "(needs --rate > 0)",
    )  # fmt: skip
    size.add_argument(
        "--transactions", type=_positive_int, metavar="N",
        help=f"number of transactions to simulate (default {SimConfig.transactions:,})",
    )  # fmt: skip
    p.add_argument(
        "--accounts", type=_positive_int, default=SimConfig.accounts, metavar="N",
        help=f"simulated bank accounts (default {SimConfig.accounts:,})",
    )  # fmt: skip
    p.add_argument(
        "--merchants", type=_merchant_count, metavar="N",
        help="merchants and terminals (POS, online shops, billers, ATMs, branches); "
        "default accounts/10, at least 20",
    )  # fmt: skip
    p.add_argument(
        "--seed", type=_seed, default=SimConfig.seed, metavar="N",
        help=f"random seed: the same seed gives the same traffic (default {SimConfig.seed})",
    )  # fmt: skip
    p.add_argument(
        "--fraud-rate", type=_float_in(0.0, MAX_FRAUD_RATE, True, "--fraud-rate"),
        default=SimConfig.fraud_rate, metavar="F",
        help=f"share of fraudulent transactions, in (0, {MAX_FRAUD_RATE}] "
        f"(default {SimConfig.fraud_rate})",
    )  # fmt: skip
    p.add_argument(
        "--unreported-share", type=_float_in(0.0, 1.0, False, "--unreported-share"),
        default=SimConfig.unreported_share, metavar="F",
        help="share of fraudulent transactions never reported by a label, in [0, 1] "
        f"(default {SimConfig.unreported_share})",
    )  # fmt: skip
    p.add_argument(
        "--tx-per-account-per-day", type=_positive_float,
        default=SimConfig.tx_per_account_per_day, metavar="F",
        help="average transactions per account per simulated day; sets how much event "
        f"time the run covers (default {SimConfig.tx_per_account_per_day}: 100,000 "
        "transactions over 5,000 accounts span about a week)",
    )  # fmt: skip
    p.add_argument(
        "--start", type=_start_time, default=SimConfig.start, metavar="ISO",
        help="event time of the start, ISO-8601 (e.g. 2026-03-01 or "
        "2026-03-01T08:00:00-05:00; without a zone, Lima time). Default 2026-01-01T00:00-05:00",
    )  # fmt: skip
    p.add_argument(
        "--out", type=_out_path, metavar="PATH",
        help="write a labelled history file instead of producing to Kafka: .csv, .csv.gz, "
        ".parquet or .pq (Parquet needs pyarrow). Rows have every transaction field plus "
        "is_fraud, fraud_type and label_time",
    )  # fmt: skip
    p.add_argument("--no-progress", action="store_true",
                   help="do not show the progress bar on stderr")  # fmt: skip
    p.set_defaults(func=run_simulate, simulate_parser=p)


def _config_from_args(args: argparse.Namespace) -> SimConfig:
    if args.duration is not None:
        if args.rate <= 0:
            args.simulate_parser.error("--duration needs a positive --rate (transactions = rate x duration)")
        transactions = max(1, int(round(args.rate * args.duration)))
    else:
        transactions = args.transactions or SimConfig.transactions
    try:
        return SimConfig(
            seed=args.seed,
            accounts=args.accounts,
            merchants=args.merchants,
            transactions=transactions,
            start=args.start,
            tx_per_account_per_day=args.tx_per_account_per_day,
            fraud_rate=args.fraud_rate,
            unreported_share=args.unreported_share,
        )
    except ValueError as exc:
        args.simulate_parser.error(str(exc))
        raise  # unreachable: error() exits


def run_simulate(args: argparse.Namespace, settings: Any) -> int:
    """Entry point of ``kuntur simulate``."""
    cfg = _config_from_args(args)
    progress = not args.no_progress
    began = time.monotonic()
    if args.out:
        try:
            rows = write_file(cfg, args.out, progress=progress)
        except OutputFormatError as exc:
            args.simulate_parser.error(str(exc))
        elapsed = time.monotonic() - began
        print(
            f"kuntur simulate: wrote {format_count(rows)} transactions to {args.out} in "
            f"{format_duration(elapsed)} ({format_rate(rows / max(elapsed, 1e-9))}/s; "
            f"seed {cfg.seed}, {cfg.accounts:,} accounts, ~{cfg.expected_days:.1f} days "
            "of event time)"
        )
        return 0
    stop = threading.Event()
    try:
        counts = produce(
            generate(cfg),
            settings.kafka_client_config(),
            settings.topic_transactions,
            settings.topic_labels,
            rate=args.rate,
            progress=progress,
            stop=stop,
            total=cfg.transactions,
        )
    except KeyboardInterrupt:
        print(
            "kuntur simulate: interrupted (messages already queued were flushed)",
            file=sys.stderr,
        )
        return 130
    except ProduceError as exc:
        print(f"kuntur simulate: {exc}", file=sys.stderr)
        return 1
    elapsed = time.monotonic() - began
    n = counts["transactions"]
    share = counts["frauds"] / n * 100 if n else 0.0
    print(
        f"kuntur simulate: produced {format_count(n)} transactions "
        f"({format_count(counts['frauds'])} fraudulent, {share:.2f}%) to "
        f"{settings.topic_transactions!r} and {format_count(counts['labels'])} labels to "
        f"{settings.topic_labels!r} in {format_duration(elapsed)} "
        f"({format_rate(n / max(elapsed, 1e-9))} tx/s)"
    )
    return 0
