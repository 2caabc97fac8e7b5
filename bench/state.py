"""State size: encoded bytes per account and per merchant, and worker RSS with 1M accounts.

Sizes: the simulator's traffic runs through the worker's own core steps
(the account and merchant stages, in-process, no broker); the table values
are the encoded states, so their lengths are exactly what the tables and changelogs hold.

RSS: a child process imports everything a worker imports and builds a fresh detector
(its baseline RSS), then fills the structures a worker's account table keeps in memory
(``ExpiringTable.data``: account id → state bytes, and ``key_partitions``) with N distinct
accounts whose states are drawn from the simulated ones; it reports RSS before and after.
This is an in-process measure of the table, not a worker fed 1M transactions (that takes
the throughput benchmark's pipeline ~N/rate seconds); the scored-transaction buffer that
awaits labels (``pending_capacity``) is separate and bounded by its own setting.

    python -m bench.state                   # 200k simulated transactions, 1M accounts
    python -m bench.state --quick
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson

from bench.common import ROOT, Size, bench_parser, envelope, rss_mib, save, size_from_args, table

KIB = 1024


def simulated_states(size: Size) -> tuple[dict[str, bytes], dict[str, bytes], float]:
    """Account and merchant table contents after the simulator's traffic; seconds taken."""
    from config.settings import load_settings
    from features.account import AccountState
    from features.merchant import MerchantState
    from offline.simulator import SimConfig, generate
    from stream.pipeline.stages import Pipeline, new_detector
    from stream.pipeline.validation import parse_transaction

    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(overrides={"data_dir": tmp})
        pipeline = Pipeline(settings, new_detector(settings))
    accounts: dict[str, bytes] = {}
    merchants: dict[str, bytes] = {}
    began = time.perf_counter()
    cfg = SimConfig(seed=size.seed, accounts=size.accounts, transactions=size.transactions)
    for ev in generate(cfg):
        if ev.kind != "transaction":
            continue
        tx = parse_transaction(orjson.dumps(ev.value))
        # as the worker's tables do: decode, run the stage, store the encoded state
        raw = accounts.get(tx.account_id)
        step = pipeline.account.on_transaction(AccountState.from_bytes(raw) if raw else None, tx)
        if step.state is None or step.emit is None:
            continue
        accounts[tx.account_id] = step.state.to_bytes()
        if tx.merchant_id:
            raw = merchants.get(tx.merchant_id)
            mstate, _ = pipeline.merchant.on_transaction(MerchantState.from_bytes(raw) if raw else None, step.emit)
            assert mstate is not None
            merchants[tx.merchant_id] = mstate.to_bytes()
    return accounts, merchants, time.perf_counter() - began


def describe(values: Sequence[bytes]) -> dict[str, Any]:
    sizes = np.array([len(v) for v in values], dtype=float)
    if not len(sizes):
        return {"entities": 0}
    return {
        "entities": len(sizes),
        "mean_bytes": round(float(sizes.mean()), 1),
        "p50_bytes": int(np.quantile(sizes, 0.5)),
        "p95_bytes": int(np.quantile(sizes, 0.95)),
        "max_bytes": int(sizes.max()),
    }


def rss_child(n: int, size: Size) -> dict[str, Any]:
    """Run in a fresh process: RSS of a worker's imports + an account table of ``n`` entities."""
    import gc

    import stream.worker  # noqa: F401 - the worker's imports are part of its baseline

    accounts, _, _ = simulated_states(Size(**{**size.__dict__, "transactions": min(size.transactions, 200_000)}))
    pool = list(accounts.values())
    del accounts
    gc.collect()
    import os

    pid = os.getpid()
    before = rss_mib(pid) or 0.0
    data: dict[str, bytes] = {}
    key_partitions: dict[str, int] = {}
    partitions = size.partitions
    for i in range(n):
        key = f"acc-{i:08d}"
        data[key] = bytes(bytearray(pool[i % len(pool)]))  # a distinct object per account, as decoded
        key_partitions[key] = i % partitions
    gc.collect()
    after = rss_mib(pid) or 0.0
    stored = sum(len(v) for v in data.values())
    return {
        "accounts": n,
        "rss_before_mib": before,
        "rss_after_mib": after,
        "rss_delta_mib": round(after - before, 1),
        "rss_bytes_per_account": round((after - before) * 2**20 / n, 1),
        "encoded_bytes_per_account": round(stored / n, 1),
    }


def run_rss(n: int, size: Size) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.state", "--rss-child", str(n), "--seed", str(size.seed)]
    cmd += ["--accounts", str(size.accounts), "--transactions", str(size.transactions)]
    cmd += ["--partitions", str(size.partitions)]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True, timeout=1800)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def run(size: Size, ctx_results: dict[str, Any] | None = None, say: Any = None) -> dict[str, Any]:
    say = say or (lambda text: print(text, file=sys.stderr, flush=True))
    say(f"state: {size.transactions:,} simulated transactions through the core ...")
    accounts, merchants, seconds = simulated_states(size)
    acc, mer = describe(list(accounts.values())), describe(list(merchants.values()))
    say(f"state: RSS with {size.state_accounts:,} accounts (child process) ...")
    rss = run_rss(size.state_accounts, size)
    result = {
        "transactions": size.transactions,
        "core_seconds": round(seconds, 2),
        "account": acc,
        "merchant": mer,
        "account_within_1kib": acc.get("max_bytes", 0) <= KIB,
        "rss": rss,
    }
    if ctx_results is not None:
        ctx_results["state"] = result
    return result


def render(result: dict[str, Any]) -> str:
    a, m, r = result["account"], result["merchant"], result["rss"]
    out = table(
        f"State — encoded bytes per entity after {result['transactions']:,} simulated transactions",
        ["table", "entities", "mean", "p50", "p95", "max"],
        [
            ["accounts", a["entities"], a["mean_bytes"], a["p50_bytes"], a["p95_bytes"], a["max_bytes"]],
            ["merchants", m["entities"], m["mean_bytes"], m["p50_bytes"], m["p95_bytes"], m["max_bytes"]],
        ],
    )
    out += "\n\n" + table(
        "Worker RSS with an account table of N distinct accounts (in-process measure)",
        ["accounts", "RSS before MiB", "RSS after MiB", "delta MiB", "RSS bytes/account", "encoded bytes/account"],
        [
            [
                r["accounts"],
                r["rss_before_mib"],
                r["rss_after_mib"],
                r["rss_delta_mib"],
                r["rss_bytes_per_account"],
                r["encoded_bytes_per_account"],
            ]
        ],
    )
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = bench_parser("python -m bench.state", __doc__)
    p.add_argument("--state-accounts", type=int, help="distinct accounts for the RSS measure (default 1000000)")
    p.add_argument("--rss-child", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    size = size_from_args(args)
    if args.state_accounts:
        size = Size(**{**size.__dict__, "state_accounts": args.state_accounts})
    if args.rss_child:
        print(json.dumps(rss_child(args.rss_child, size)))
        return 0
    head = envelope(size)
    result = run(size)
    print(render(result))
    if not args.no_save:
        print(f"saved {save('state', {**head, **result})}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
