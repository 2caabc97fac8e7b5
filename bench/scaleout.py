"""Scale-out: 1 vs 2 Kuntur workers in one consumer group on the same pre-produced topic.

Both runs read the topic from the beginning in fresh consumer groups; the two workers
split its partitions. On a 2-core machine the broker, the two workers and this
benchmark share two cores, so the 2-worker figure shows the group working (each
worker's share of the transactions), not the speed-up more cores would give.

    python -m bench.scaleout
    python -m bench.scaleout --quick
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from bench.common import Context, add_common_arguments, envelope, overrides_from_args, save, size_from_args, table
from bench.throughput import run_pipeline


def run(ctx: Context) -> dict[str, Any]:
    ctx.ensure_source()
    one = ctx.results.get("throughput", {}).get("pipeline")
    if one is None:
        ctx.say("scale-out: 1 worker ...")
        one = run_pipeline(ctx, workers=1, name="scale1")
    ctx.say("scale-out: 2 workers ...")
    two = run_pipeline(ctx, workers=2, name="scale2")
    a, b = one["events_per_s"], two["events_per_s"]
    result = {
        "cores": os.cpu_count(),
        "one_worker": one,
        "two_workers": two,
        "speedup": round(b / a, 2) if a and b else None,
    }
    ctx.results["scaleout"] = result
    return result


def render(result: dict[str, Any]) -> str:
    rows = [
        [n, r["events_per_s"], r["events_per_s_10_90"], " / ".join(f"{x:,}" for x in r["per_worker_transactions"])]
        for n, r in ((1, result["one_worker"]), (2, result["two_workers"]))
    ]
    out = table(
        f"Scale-out — workers in one group ({result['cores']} cores shared with the broker)",
        ["workers", "tx/s", "tx/s (10-90% of count)", "transactions per worker"],
        rows,
    )
    return out + f"\nspeed-up 2 vs 1 worker: {result['speedup']}"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.scaleout",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    add_common_arguments(p)
    args = p.parse_args(argv)
    size = size_from_args(args)
    with Context(size, args.bootstrap, keep=args.keep, overrides=overrides_from_args(args)) as ctx:
        head = envelope(size)
        result = run(ctx)
    print(render(result))
    if not args.no_save:
        print(f"saved {save('scaleout', {**head, **result})}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
