"""The simulated world: Peruvian cities, banks, merchants and terminals, and the accounts.

:class:`World` is built from the seed (its random generators are passed in, so the draws
stay in one deterministic order) and then holds every account's and merchant's static
attributes plus the little state that changes as traffic flows: balances, where a
customer currently is (trips), and until when an account is taken by a fraud episode.
Indices (``int``) name accounts and merchants; ``a_*`` / ``m_*`` lists hold their columns.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np

from features.geo import haversine_km
from offline.simulator.schema import DAY, SimConfig
from offline.timefmt import lima_iso

__all__ = ["ACCOUNT_TYPES", "CITIES", "World"]

# name, latitude, longitude, share of population/accounts, spread (degrees, 1 sigma)
CITIES: tuple[tuple[str, float, float, float, float], ...] = (
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
ACCOUNT_TYPES = ("savings", "checking", "credit")
_ACCOUNT_TYPE_SHARE = (0.50, 0.25, 0.25)
_TRAVEL_KMH = 600.0  # legit travel: flight/bus speed, plus an hour of slack


class World:
    """Accounts, merchants and terminals of one seed (see the module docstring)."""

    def __init__(self, cfg: SimConfig, rng: np.random.Generator, pr: random.Random) -> None:
        self.cfg = cfg
        self.rng = rng
        self.pr = pr
        self.start = int(cfg.start)
        self._build_merchants()
        self._build_accounts()

    def _build_merchants(self) -> None:
        rng, pr = self.rng, self.pr
        n = self.cfg.n_merchants
        ncat = len(_CATEGORIES)
        share = np.array([c[2] for c in _CATEGORIES])
        cats = np.concatenate([np.arange(ncat), rng.choice(ncat, n - ncat, p=share / share.sum())])
        city_share = np.array([c[3] for c in CITIES])
        cities = rng.choice(len(CITIES), n, p=city_share / city_share.sum())
        spread = np.array([c[4] for c in CITIES])
        centre = np.array([[c[1], c[2]] for c in CITIES])
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
        ncity = len(CITIES)
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
                city, lat, lon = 0, CITIES[0][1], CITIES[0][2]  # head office in Lima
            elif kind not in lima_done:  # Lima always has every kind of terminal
                lima_done.add(kind)
                city = 0
                lat = CITIES[0][1] + pr.gauss(0, CITIES[0][4])
                lon = CITIES[0][2] + pr.gauss(0, CITIES[0][4])
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
        cw = [CITIES[c][3] for c in self.cities_ok]
        self.cities_ok_cum = list(np.cumsum(cw) / sum(cw))
        self.dist_km = [[haversine_km(a[1], a[2], b[1], b[2]) for b in CITIES] for a in CITIES]
        self.travel_s = [[int(d / _TRAVEL_KMH * 3600) + 3600 if d > 50 else 0 for d in row]
                         for row in self.dist_km]  # fmt: skip

    def _pick_weighted(self, items: list[int]) -> int:
        weights = [self.m_pop[i] for i in items]
        return self.pr.choices(items, weights=weights, k=1)[0]

    def _build_accounts(self) -> None:
        cfg, rng, pr = self.cfg, self.rng, self.pr
        n = cfg.accounts
        ok = np.array(self.cities_ok)
        w = np.array([CITIES[c][3] for c in self.cities_ok])
        home = ok[rng.choice(len(ok), n, p=w / w.sum())]
        centre = np.array([[c[1], c[2]] for c in CITIES])
        spread = np.array([c[4] for c in CITIES])
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
        self.a_type = [ACCOUNT_TYPES[k] for k in atype.tolist()]
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
                    payees.append(self.cci())
            self.a_payees.append(payees)
            self.a_devices.append(["dev-" + "".join(pr.choices(hexdigits, k=12)) for _ in range(pr.randint(1, 2))])
            self.a_ips.append([self.ip_home() for _ in range(pr.randint(1, 2))])
        self.carrier_ips = [self.ip_mobile() for _ in range(max(50, n // 20))]
        self.mules = [self.cci() for _ in range(max(20, n // 200))]

    def cci(self) -> str:
        """A 20-digit interbank account code (CCI), as used for transfers to other banks."""
        return "cci-" + "".join(str(self.pr.randrange(10)) for _ in range(20))

    def ip_home(self) -> str:
        pr = self.pr
        first = pr.choice((190, 181, 200, 201, 186))
        return f"{first}.{pr.randrange(1, 255)}.{pr.randrange(256)}.{pr.randrange(1, 255)}"

    def ip_mobile(self) -> str:
        pr = self.pr
        first = pr.choice((179, 38, 191, 132))
        return f"{first}.{pr.randrange(1, 255)}.{pr.randrange(256)}.{pr.randrange(1, 255)}"

    def ip_fraud(self) -> str:
        pr = self.pr
        if pr.random() < 0.5:
            return self.ip_home() if pr.random() < 0.5 else self.ip_mobile()
        first = pr.choice((45, 102, 185, 193, 5, 91, 103))
        return f"{first}.{pr.randrange(1, 255)}.{pr.randrange(256)}.{pr.randrange(1, 255)}"

    def device_new(self) -> str:
        return "dev-" + "".join(self.pr.choices("0123456789abcdef", k=12))

    def age(self, a: int, t: int) -> int:
        return self.a_age[a] + (t - self.start) // DAY

    def tx(
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
            "timestamp": lima_iso(t),
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
        v["account_age_days"] = self.age(a, t)
        if ip is not None:
            v["ip_address"] = ip
            v["device_id"] = device
        if lat is not None:
            v["latitude"] = lat
            v["longitude"] = lon
        v["institution_id"] = self.a_inst[a]
        return v

    def pos_in_city(self, city: int, categories: tuple[str, ...] | None = None) -> int:
        if categories:
            pool = [m for name in categories for m in self.pos_by_city_cat[city].get(name, ())]
            if pool:
                return self.pr.choice(pool)
        return self.pr.choice(self.pos_by_city[city])

    def other_city(self, city: int) -> int:
        others = [c for c in self.cities_ok if c != city]
        if not others:
            return city
        return self.pr.choices(others, weights=[CITIES[c][3] for c in others], k=1)[0]
