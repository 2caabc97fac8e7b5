"""Micro-benchmark of the model candidates: µs per ``score_one``/``learn_one`` on 60
synthetic features (0.7 % fraud), and per ``Detector.score`` in steady state (every score
also learns one transaction past its horizon; alerts include their explanation).

CPU time, best of 3, each call on a fresh dict copy as the feature extractor would hand
over. No broker, no worker: the model layer alone.

    python -m bench.models              # 5000 calls per fast model
    python -m bench.models --calls 1000
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable, Sequence

from models.detector import Detector
from models.registry import CANDIDATES
from models.scorer import FraudModel


def _per_call_us(fn: Callable[[int], object], count: int) -> float:
    runs = []
    for _ in range(3):
        t0 = time.process_time()
        for i in range(count):
            fn(i)
        runs.append((time.process_time() - t0) / count * 1e6)
    return min(runs)


def _bench_candidate(
    name: str, names: list[str], pool: list[tuple[dict, bool]], count: int
) -> tuple[float, float, float]:
    model = FraudModel(name, names)
    for x, y in pool:
        model.learn_one(x, y)
    k = len(pool)
    score = _per_call_us(lambda i: model.score_one(dict(pool[i % k][0])), count)
    learn = _per_call_us(lambda i: model.learn_one(dict(pool[i % k][0]), pool[i % k][1]), count)
    horizon = 3 * count
    det = Detector(FraudModel(name, names), label_horizon_s=float(horizon))
    for i in range(horizon):  # fill the buffer: from now on every score learns one
        det.score(f"w{i}", "acc", "m", float(i), dict(pool[i % k][0]))
    clock = iter(range(horizon, horizon + 10 * count))

    def detect(_: int) -> None:
        t = next(clock)
        det.score(f"t{t}", "acc", "m", float(t), dict(pool[t % k][0]))

    return score, learn, _per_call_us(detect, count)


def benchmark(n: int = 5_000) -> None:
    """Print the table: ``n`` calls for the ``logreg*`` candidates, a tenth (at least
    200) for the slower ones."""
    rng = random.Random(0)
    names = [f"feature_{i:02d}" for i in range(60)]
    pool = []
    for _ in range(1000):
        y = rng.random() < 0.007
        x = {k: rng.gauss(2.0 if y and i < 5 else 0.0, 1.0 + i % 7) for i, k in enumerate(names)}
        pool.append((x, y))
    print(f"{'model':16s} {'score_one':>10s} {'learn_one':>10s} {'Detector.score':>15s}  (µs)")
    for name in CANDIDATES:
        count = n if name.startswith("logreg") else max(n // 10, 200)
        score, learn, detect = _bench_candidate(name, names, pool, count)
        print(f"{name:16s} {score:10.1f} {learn:10.1f} {detect:15.1f}")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.models", description=__doc__.split("\n\n")[0])
    p.add_argument("--calls", type=int, default=5_000, help="calls per fast candidate (default 5000)")
    benchmark(p.parse_args(argv).calls)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
