"""The event stream: genuine traffic in time, fraud episodes woven in, labels when reported.

One Poisson process over all accounts (:class:`Clock`: hour of day, day of week and the
quincena paydays modulate it) drives the genuine transactions; every so many slots
:class:`~offline.simulator.typologies.Typologies` starts a fraud episode instead, whose
transactions and every report wait in a heap until their event time comes.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from config.rates import PEN_PER_UNIT
from offline.simulator.schema import DAY, SimConfig, SimEvent
from offline.simulator.typologies import REPORT_MAX_S, TxPayload, Typologies
from offline.simulator.world import ACCOUNT_TYPES, CITIES, World
from offline.timefmt import LIMA, lima_iso

__all__ = ["Clock", "Simulator", "generate"]

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
_NEW_DEVICE_U = 0.997  # 0.3% of genuine digital transactions come from a new device
_TRIP_PROBABILITY = 0.003  # per card-present purchase made at home
_HARD_BIG_PURCHASE = 0.01  # hard mode: genuine purchases 4-15x the usual amount
_HARD_NEW_DEVICE = 0.03  # hard mode: genuine digital transactions from a new device and IP



#: Soles per US dollar the simulator prices its dollar payments at (config/rates.py's rate).
USD_RATE = PEN_PER_UNIT["USD"]


def _in_dollars(v: dict[str, Any], n: int) -> None:
    """Every fourth online purchase is paid in US dollars (Peru is a dollarised market): its
    amount and the balance it reports are in USD; a worker converts both back to soles."""
    if n % 4 == 0 and v.get("channel") == "online" and v.get("transaction_type") == "purchase":
        v["amount"] = round(max(v["amount"] / USD_RATE, 0.01), 2)
        v["account_balance"] = round(v["account_balance"] / USD_RATE, 2)
        v["currency"] = "USD"

class Clock:
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


class Simulator:
    """Builds the world from the seed, then streams events (see the module docstring)."""

    def __init__(self, cfg: SimConfig) -> None:
        self.cfg = cfg
        self.rng = np.random.default_rng([cfg.seed, 0x4B554E])
        self.pr = random.Random(cfg.seed * 7919 + 17)
        self.hr = random.Random(cfg.seed * 104729 + 3)  # hard mode's own draws
        self.start = int(cfg.start)
        self.n = 0  # transactions emitted
        self.seq = 0  # heap tie-breaker (deterministic)
        self.heap: list[tuple[int, int, int, Any]] = []
        self.last_label = ""  # label_time of the transaction just yielded (for files)
        self.world = World(cfg, self.rng, self.pr)
        self.fraud = Typologies(cfg, self.world, self.pr, self._push_tx)

    def _push(self, t: int, kind: int, payload: Any) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (t, self.seq, kind, payload))

    def _push_tx(self, t: int, payload: TxPayload) -> None:
        self._push(t, _TX, payload)

    def _emit_heap_tx(self, t: int, payload: Any) -> SimEvent:
        a, v, fraud_type, report, drain = payload
        world = self.world
        self.n += 1
        v["transaction_id"] = f"tx-{self.cfg.seed}-{self.n:09d}"
        balance = world.a_balance[a]
        if drain:
            v["amount"] = round(max(100.0 + self.pr.random() * 100.0, balance * drain), 2)
        amount = v["amount"]
        if amount > balance:  # money arrived from elsewhere (salary at another bank, ...)
            balance += max(world.a_income[a], amount - balance + world.a_income[a] * 0.5)
        v["account_balance"] = round(balance, 2)
        world.a_balance[a] = balance - amount
        _in_dollars(v, self.n)
        if fraud_type is None:
            world.a_last_phys[a] = t
            self.last_label = ""
            return SimEvent(float(t), "transaction", v["account_id"], v, False, None)
        self.last_label = ""
        if self.pr.random() >= self.cfg.unreported_share:
            at = min(report + self.pr.randint(0, 900), t + REPORT_MAX_S)
            self.last_label = label_at = lima_iso(at)
            self._push(at, _LABEL, {"transaction_id": v["transaction_id"],
                                    "account_id": v["account_id"], "is_fraud": True,
                                    "reported_at": label_at})  # fmt: skip
        return SimEvent(float(t), "transaction", v["account_id"], v, True, fraud_type)

    def _noisier(self, code: int, amount: float, device: str | None, ip: str | None) -> tuple[
        float, str | None, str | None
    ]:
        """Hard mode: a genuine transaction that looks like fraud now and then. Draws come
        from a generator of their own, so the default mode's stream is unchanged."""
        hr = self.hr
        if code <= 2 and hr.random() < _HARD_BIG_PURCHASE:  # a one-off large purchase
            amount *= hr.uniform(4.0, 15.0)
        if device is not None and hr.random() < _HARD_NEW_DEVICE:  # a new phone on a new network
            device = "dev-" + "".join(hr.choices("0123456789abcdef", k=12))
            first = hr.choice((45, 102, 185, 179, 38, 191))
            ip = f"{first}.{hr.randrange(1, 255)}.{hr.randrange(256)}.{hr.randrange(1, 255)}"
        return amount, device, ip

    def _genuine_label(self, t: int, v: dict[str, Any]) -> None:
        pr = self.pr
        d = math.exp(math.log(4 * 3600) + pr.gauss(0, 1))
        at = t + int(min(max(d, 600), 7 * DAY))
        self.last_label = label_at = lima_iso(at)
        self._push(at, _LABEL, {"transaction_id": v["transaction_id"],
                                "account_id": v["account_id"], "is_fraud": False,
                                "reported_at": label_at})  # fmt: skip

    def _start_trip(self, a: int, t: int) -> None:
        world = self.world
        home = world.a_home[a]
        dest = world.other_city(home)
        if dest == home or t - world.a_last_phys[a] < world.travel_s[home][dest]:
            return
        pr = self.pr
        world.a_city[a] = dest
        world.a_cur_lat[a] = round(CITIES[dest][1] + pr.gauss(0, CITIES[dest][4]), 5)
        world.a_cur_lon[a] = round(CITIES[dest][2] + pr.gauss(0, CITIES[dest][4]), 5)
        world.a_trip_end[a] = t + pr.randint(2 * DAY, 7 * DAY)

    def events(self) -> Iterator[SimEvent]:
        """The event stream. One flat hot loop: local names, few calls, for speed."""
        cfg, rng, pr = self.cfg, self.rng, self.pr
        world, fraud = self.world, self.fraud
        total = cfg.transactions
        clock = Clock(self.start, cfg.accounts * cfg.tx_per_account_per_day / DAY)
        heap = self.heap
        pop = heapq.heappop
        genuine_share = cfg.genuine_label_share
        hard = cfg.hard
        seed = cfg.seed
        ep_next = fraud.ep_next
        next_episode = min(ep_next)
        slot = 0
        combo_cum = []
        for account_type in ACCOUNT_TYPES:
            cum = np.cumsum(_COMBO_SHARE[account_type]) / sum(_COMBO_SHARE[account_type])
            cum[cum >= cum[-1] - 1e-9] = 1.0 + 1e-9  # never pick a zero-share tail combo
            combo_cum.append(cum)
        a_id, a_type, a_inst, a_age = world.a_id, world.a_type, world.a_inst, world.a_age
        a_balance, a_income, a_spend = world.a_balance, world.a_income, world.a_spend
        a_big = world.a_big
        a_pos, a_online, a_billers = world.a_pos, world.a_online, world.a_billers
        a_payees, a_devices, a_ips = world.a_payees, world.a_devices, world.a_ips
        a_home, a_city, a_trip_end = world.a_home, world.a_city, world.a_trip_end
        a_last = world.a_last_phys
        a_cur_lat, a_cur_lon, a_lat, a_lon = world.a_cur_lat, world.a_cur_lon, world.a_lat, world.a_lon
        m_id, m_cat, m_lat, m_lon = world.m_id, world.m_cat, world.m_lat, world.m_lon
        m_median, m_sigma = world.m_median, world.m_sigma
        pos_by_city, atm_by_city = world.pos_by_city, world.atm_by_city
        branch_by_city = world.branch_by_city
        online_all = world.online_all
        carrier_ips, travel_s = world.carrier_ips, world.travel_s
        cm_active = fraud.cm_active
        exp = math.exp
        start = self.start
        point = 0.0
        chunk = int(min(8192, max(256, total // 8)))
        while self.n < total:
            gaps = rng.exponential(1.0, chunk)
            points = point + np.cumsum(gaps)
            point = float(points[-1])
            ts_arr, payday_arr = clock.times(points)
            acc_arr = np.minimum(np.searchsorted(world.a_cum, rng.random(chunk), side="right"),
                                 cfg.accounts - 1)  # fmt: skip
            u_combo = rng.random(chunk)
            codes = np.empty(chunk, dtype=np.int64)
            types = world.a_type_code[acc_arr]
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
                    ep_next[k] += fraud.episode_gap(k)
                    next_episode = min(ep_next)
                    fraud.start(k, t)
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
                        devs.append(world.device_new())
                    device = devs[-1] if u2 > _NEW_DEVICE_U else devs[int(up * 7919) % len(devs)]
                    ips = a_ips[a]
                    ip = ips[int(up * 104729) % len(ips)] if u2 < 0.9 else (
                        carrier_ips[int(u2 * 7919) % len(carrier_ips)])  # fmt: skip
                elif code == 3 or code == 11:  # ATM
                    if at_home and ux < 0.7:
                        merchant = world.a_atm[a]
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
                        devs.append(world.device_new())
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
                            cp = a_id[int(up * 1e6) % len(a_id)] if ux > 0.94 else world.cci()
                        else:
                            payees = a_payees[a]
                            cp = payees[int(up * len(payees))]
                    else:
                        billers = a_billers[a]
                        merchant = billers[int(up * len(billers))]
                        amount = m_median[merchant] * (spend**0.5) * exp(m_sigma[merchant] * z)
                if hard:
                    amount, device, ip = self._noisier(code, amount, device, ip)
                if amount < 0.5:
                    amount = 0.5
                amount = round(amount, 2)
                self.n += 1
                v: dict[str, Any] = {
                    "transaction_id": f"tx-{seed}-{self.n:09d}",
                    "account_id": a_id[a],
                    "timestamp": lima_iso(t),
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
                _in_dollars(v, self.n)
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
                    fraud.skimmed(a, t, merchant)
                yield SimEvent(float(t), "transaction", a_id[a], v, False, None)
        # All transactions are out: flush the labels still pending (in time order).
        while heap:
            ht, _, kind, payload = pop(heap)
            if kind == _LABEL:
                yield SimEvent(float(ht), "label", payload["account_id"], payload, False, None)


def generate(cfg: SimConfig) -> Iterator[SimEvent]:
    """Stream the simulated transactions and labels in non-decreasing event time.

    Deterministic for a config; memory stays bounded (pending labels and fraud episodes
    only), so millions of transactions can be streamed.
    """
    return Simulator(cfg).events()
