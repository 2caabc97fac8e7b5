"""The five fraud typologies: when episodes start, whom they hit, what they emit.

Episodes of each typology start every so many *slots* (one slot = one would-be genuine
transaction; see :meth:`Typologies.calibrate`), so that frauds make up ``fraud_rate`` of
the traffic in the mix of :data:`FRAUD_MIX`. An episode builds its transactions with the
:class:`~offline.simulator.world.World` and hands each one, with its fraud type and
report time, to ``push_tx`` — the generator's event heap — to be emitted in time order.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any

import numpy as np

from features.geo import haversine_km
from offline.simulator.schema import DAY, FRAUD_TYPES, SimConfig
from offline.simulator.world import CITIES, World
from offline.timefmt import LIMA_OFFSET_S

__all__ = ["FRAUD_MIX", "REPORT_MAX_S", "TxPayload", "Typologies"]

#: What the generator's heap carries for a transaction due later:
#: (account, value, fraud type or None, report time, share of the balance drained).
TxPayload = tuple[int, dict[str, Any], str | None, int, float]


# Fraud mix: share of fraudulent *transactions* and mean fraudulent transactions/episode.
FRAUD_MIX = {
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
REPORT_MAX_S = 30 * DAY
_IMPOSSIBLE_KMH = 900.0


class Typologies:
    """Starts fraud episodes against a :class:`World` (see the module docstring)."""

    def __init__(
        self, cfg: SimConfig, world: World, pr: random.Random, push_tx: Callable[[int, TxPayload], None]
    ) -> None:
        self.cfg = cfg
        self.world = world
        self.pr = pr
        self.push_tx = push_tx
        self.cm_active: dict[int, list[Any]] = {}  # compromised merchant -> [end, cards left]
        self.calibrate()

    def calibrate(self) -> None:
        """Episode start rate per slot so that frauds are ``fraud_rate`` of all transactions.

        Episodes of each typology start every ``gap`` slots (one slot = one would-be genuine
        transaction), with gamma(4)-distributed gaps: random, but steadier than a Poisson
        process, so that short runs stay close to the configured fraud rate.
        """
        r = self.cfg.fraud_rate
        ratio = {k: FRAUD_MIX[k] / _EPISODE_SIZE[k] for k in FRAUD_TYPES}
        # Slots are consumed by episodes; impossible travel adds one genuine anchor back.
        k = sum(ratio.values()) - ratio["impossible_travel"]
        c = r / (1.0 - r + r * k)
        self.ep_mean_gap = [1.0 / (c * ratio[name]) for name in FRAUD_TYPES]
        self.ep_next = [self.episode_gap(k) * self.pr.random() for k in range(len(FRAUD_TYPES))]

    def episode_gap(self, kind: int) -> float:
        return self.pr.gammavariate(_EPISODE_GAP_SHAPE, self.ep_mean_gap[kind] / _EPISODE_GAP_SHAPE)

    def report_time(self, last_t: int) -> int:
        d = math.exp(math.log(_REPORT_MEDIAN_S) + _REPORT_SIGMA * self.pr.gauss(0.0, 1.0))
        return last_t + int(min(max(d, _REPORT_MIN_S), REPORT_MAX_S - 3600))

    def _victim(self, t: int, credit_ok: bool = True) -> int | None:
        """An account free of other fraud episodes (activity-weighted), or None."""
        world = self.world
        for _ in range(8):
            a = min(int(np.searchsorted(world.a_cum, self.pr.random(), side="right")),
                    len(world.a_cum) - 1)  # fmt: skip
            if world.a_busy[a] <= t and (credit_ok or world.a_type[a] != "credit"):
                return a
        return None

    def start(self, kind: int, t: int) -> None:
        name = FRAUD_TYPES[kind]
        getattr(self, "_ep_" + name)(t)

    def _ep_card_testing(self, t: int) -> None:
        world = self.world
        a = self._victim(t)
        if a is None:
            return
        pr = self.pr
        online = world.online_by_cat.get("digital_services", []) + world.online_by_cat.get("online_retail", [])
        merchants = pr.sample(online, min(len(online), pr.randint(1, 3)))
        device, ip = world.device_new(), world.ip_fraud()
        items = []
        tt = t
        hard = self.cfg.hard
        for _ in range(pr.randint(3, 6) if hard else pr.randint(6, 14)):
            amount = pr.uniform(3.0, 25.0) if hard else 1.0 if pr.random() < 0.2 else pr.uniform(0.5, 5.0)
            items.append((tt, world.tx(a, tt, amount, "purchase", "online", pr.choice(merchants),
                                       device=device, ip=ip)))  # fmt: skip
            tt += max(3, int(pr.expovariate(1 / 25)))
        big = world.online_by_cat.get("online_retail", []) + world.online_by_cat.get("travel", [])
        for _ in range(pr.randint(1, 2)):
            tt += pr.randint(120, 1800)
            amount = math.exp(math.log(300.0 if hard else 900.0) + 0.5 * pr.gauss(0, 1))
            items.append((tt, world.tx(a, tt, amount, "purchase", "online", pr.choice(big),
                                       device=device, ip=ip)))  # fmt: skip
        self._schedule(a, items, "card_testing")

    def _ep_account_takeover(self, t: int) -> None:
        world = self.world
        a = self._victim(t, credit_ok=False)
        if a is None:
            return
        pr = self.pr
        own = self.cfg.hard and pr.random() < 0.5  # hard: malware on the victim's own phone
        if pr.random() < (0.3 if own else 0.7):  # usually at night, Lima time
            local = t + LIMA_OFFSET_S
            sod = local % DAY
            midnight = t - sod
            night = midnight + pr.randint(1800, 16200)
            t = night if night >= t else night + DAY
        device, ip = world.device_new(), world.ip_fraud()
        if own:
            device, ip = world.a_devices[a][0], world.a_ips[a][0]
        channel = "mobile" if pr.random() < 0.6 else "online"
        lat: float | None = None
        lon: float | None = None
        if channel == "mobile":
            city = pr.choice(world.cities_ok)
            lat = round(CITIES[city][1] + pr.gauss(0, CITIES[city][4]), 5)
            lon = round(CITIES[city][2] + pr.gauss(0, CITIES[city][4]), 5)
        mule = pr.choice(world.mules)
        items: list[tuple[int, dict[str, Any], float]] = []
        tt = t
        if pr.random() < 0.3:
            v = world.tx(a, tt, pr.uniform(1.0, 50.0), "transfer", channel, counterparty=mule,
                         device=device, ip=ip, lat=lat, lon=lon)  # fmt: skip
            items.append((tt, v, 0.0))
            tt += pr.randint(60, 900)
        for j in range(pr.randint(1, 3)):
            if j and pr.random() < 0.4:
                mule = pr.choice(world.mules)
            v = world.tx(a, tt, 0.0, "transfer", channel, counterparty=mule, device=device,
                         ip=ip, lat=lat, lon=lon)  # fmt: skip
            drain = pr.uniform(0.1, 0.4) if self.cfg.hard else pr.uniform(0.4, 0.9)
            items.append((tt, v, drain))  # amount drains the balance then
            tt += pr.randint(60, 900)
        report = self.report_time(items[-1][0])
        for tt, v, drain in items:
            self.push_tx(tt, (a, v, "account_takeover", report, drain))
        world.a_busy[a] = items[-1][0] + 3600

    def _ep_compromised_merchant(self, t: int) -> None:
        world = self.world
        pr = self.pr
        # A terminal picked in proportion to its traffic: a usual shop of a random customer.
        a = min(int(np.searchsorted(world.a_cum, pr.random(), side="right")), len(world.a_cum) - 1)
        m = pr.choice(world.a_pos[a])
        if m in self.cm_active:
            return
        self.cm_active[m] = [t + pr.randint(DAY, 3 * DAY), pr.randint(5, 15)]

    def skimmed(self, a: int, t: int, m: int) -> None:
        """A card used at a compromised terminal: cloned, and cashed out later."""
        world = self.world
        state = self.cm_active[m]
        if t > state[0]:
            del self.cm_active[m]
            return
        pr = self.pr
        if world.a_busy[a] > t:
            return
        state[1] -= 1
        if state[1] <= 0:
            del self.cm_active[m]
        delay = math.exp(math.log(16 * 3600) + 0.7 * pr.gauss(0, 1))
        tt = t + int(min(max(delay, 2 * 3600), 4 * DAY))
        city = world.other_city(world.a_home[a])
        items = []
        atm = pr.random() < 0.6 and world.atm_by_city[city]
        for _ in range(pr.randint(1, 2)):
            if atm:
                terminal = pr.choice(world.atm_by_city[city])
                amount = 50.0 * pr.randint(6, 30)
                v = world.tx(a, tt, amount, "withdrawal", "atm", terminal,
                             lat=world.m_lat[terminal], lon=world.m_lon[terminal])  # fmt: skip
            else:
                shop = world.pos_in_city(city, ("electronics", "department_store"))
                amount = world.a_spend[a] * 700.0 * pr.uniform(1.0, 4.0)
                v = world.tx(a, tt, amount, "purchase", "pos", shop,
                             lat=world.m_lat[shop], lon=world.m_lon[shop])  # fmt: skip
            items.append((tt, v))
            tt += pr.randint(180, 1200)
        self._schedule(a, items, "compromised_merchant")

    def _ep_amount_spike(self, t: int) -> None:
        world = self.world
        a = self._victim(t)
        if a is None:
            return
        pr = self.pr
        items = []
        tt = t
        online = pr.random() < 0.45
        device, ip = (world.device_new(), world.ip_fraud()) if online else (None, None)
        for _ in range(pr.randint(1, 3)):
            factor = pr.uniform(1.5, 4.0) if self.cfg.hard else pr.uniform(5.0, 20.0)
            if online:
                m = pr.choice(world.online_by_cat.get("online_retail", []) + world.online_by_cat.get(
                    "travel", []))  # fmt: skip
                amount = world.a_spend[a] * world.m_median[m] * factor
                v = world.tx(a, tt, amount, "purchase", "online", m, device=device, ip=ip)
            else:
                m = world.pos_in_city(world.a_city[a], ("electronics", "department_store",
                                                       "clothing"))  # fmt: skip
                amount = world.a_spend[a] * world.m_median[m] * factor
                v = world.tx(a, tt, amount, "purchase", "pos", m, lat=world.m_lat[m],
                             lon=world.m_lon[m])  # fmt: skip
            items.append((tt, v))
            tt += pr.randint(600, 3 * 3600)
        self._schedule(a, items, "amount_spike")

    def _ep_impossible_travel(self, t: int) -> None:
        world = self.world
        a = self._victim(t)
        if a is None:
            return
        pr = self.pr
        city = world.a_city[a]
        usual = world.a_pos[a] if city == world.a_home[a] else world.pos_by_city[city]
        anchor = pr.choice(usual)
        far = [c for c in world.cities_ok if world.dist_km[city][c] > 350]
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
                terminals.append(pr.choice(world.atm_by_city[dest]))
            else:
                terminals.append(world.pos_in_city(dest, ("electronics", "department_store",
                                                          "supermarket", "fuel")))  # fmt: skip
        d = min(haversine_km(world.m_lat[anchor], world.m_lon[anchor], world.m_lat[m], world.m_lon[m])
                for m in terminals)  # fmt: skip
        max_span = (d - 60.0) / (1.15 * _IMPOSSIBLE_KMH) * 3600
        if max_span < 5 * 60 + second_gap:
            second_gap = 0
            terminals = terminals[:1]
        if max_span < 5 * 60:
            return
        first_gap = min(first_gap, int(max_span) - second_gap)
        z = pr.gauss(0, 1)
        spend = world.a_spend[a]
        genuine = world.tx(a, t, spend * world.m_median[anchor] * math.exp(world.m_sigma[anchor] * z),
                           "purchase", "pos", anchor, lat=world.m_lat[anchor],
                           lon=world.m_lon[anchor])  # fmt: skip
        self.push_tx(t, (a, genuine, None, 0, 0.0))
        items = []
        tt = t + first_gap
        for m in terminals:
            if world.m_cat[m] == "atm":
                v = world.tx(a, tt, 50.0 * pr.randint(4, 30), "withdrawal", "atm", m,
                             lat=world.m_lat[m], lon=world.m_lon[m])  # fmt: skip
            else:
                amount = spend * world.m_median[m] * pr.uniform(1.0, 6.0)
                v = world.tx(a, tt, amount, "purchase", "pos", m, lat=world.m_lat[m],
                             lon=world.m_lon[m])  # fmt: skip
            items.append((tt, v))
            tt += second_gap
        self._schedule(a, items, "impossible_travel")

    def _schedule(self, a: int, items: list[tuple[int, dict[str, Any]]], fraud_type: str) -> None:
        report = self.report_time(items[-1][0])
        for tt, v in items:
            self.push_tx(tt, (a, v, fraud_type, report, 0.0))
        self.world.a_busy[a] = max(self.world.a_busy[a], items[-1][0] + 3600)

    # ------------------------------------------------------------------ emission
