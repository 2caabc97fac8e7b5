"""Seeded, reproducible synthetic traffic of Peruvian banks, with labelled fraud.

``generate(cfg)`` streams :class:`SimEvent` objects in non-decreasing event time:
transactions (DESIGN.md Transaction JSON) and the delayed fraud reports that banks'
investigation / chargeback systems would send (Label JSON). The same seed always gives
the same events, byte for byte. ``write_file`` writes a labelled CSV/Parquet history
(for ``kuntur replay`` / ``kuntur evaluate``), ``produce`` sends the stream to Kafka and
``register`` adds the ``kuntur simulate`` command.

Modules: ``schema`` (the config, the event, the file columns), ``world`` (cities, banks,
merchants, accounts), ``typologies`` (the fraud episodes), ``generator`` (the event
stream), ``output`` (history files and the Kafka producer) and ``cli``.

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

Hard mode (``SimConfig(hard=True)``, ``kuntur simulate --hard``)
    So that the simulator stops being the easiest benchmark: genuine behaviour is
    noisier -- 1 % of purchases are one-off large ones (4-15x the usual amount), 3 % of
    digital transactions come from a new device on a new network -- and fraud is
    subtler: amount spikes of 1.5-4x instead of 5-20x, half of the account takeovers
    from the victim's own phone (malware) and mostly by day, draining 10-40 % instead
    of 40-90 %, card testing with 3-6 probes of S/ 3-25 then ~S/ 300 purchases. Label
    noise comes from ``unreported_share`` (raise it, e.g. 0.25): an unreported fraud is
    learned as genuine at the horizon, which is what a fraud wrongly reported as genuine
    teaches too. The default mode's stream is unchanged (hard mode draws from its own
    generator or only where it changes something).

Field notes
    ``account_balance`` is the available balance *before* the transaction (for credit
    accounts: available credit). ``ip_address``/``device_id`` only on online/mobile
    transactions; ``latitude``/``longitude`` only on pos/atm/branch/mobile ones;
    ``merchant_id``/``merchant_category`` on purchases, withdrawals, payments and
    ATM/branch deposits (the terminal); ``counterparty_account`` on transfers. Absent
    fields are omitted from the JSON (empty cells in CSV, nulls in Parquet).
"""

from __future__ import annotations

from offline.simulator.cli import _config_from_args, register, run_simulate
from offline.simulator.errors import OutputFormatError, ProduceError
from offline.simulator.generator import generate
from offline.simulator.output import output_format, produce, write_file
from offline.simulator.schema import (
    DEFAULT_START,
    FILE_COLUMNS,
    FRAUD_TYPES,
    TRANSACTION_FIELDS,
    SimConfig,
    SimEvent,
)
from offline.timefmt import LIMA

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
    "_config_from_args",
    "generate",
    "output_format",
    "produce",
    "register",
    "run_simulate",
    "write_file",
]
