"""Online precision/recall of the alert decision, from labels as they resolve.

Only outcomes that move precision or recall are windowed: true positives (alerted, fraud),
false positives (alerted, genuine) and false negatives (missed fraud). True negatives are
counted cumulatively but do not occupy the window, otherwise the ~99 % genuine traffic
would flush every fraud outcome out of it.

>>> q = OnlineQuality(window=3)
>>> for alerted, is_fraud in [(True, True), (True, False), (False, True), (True, True)]:
...     q.update(alerted, is_fraud)
>>> q.tp, q.fp, q.fn            # cumulative
(2, 1, 1)
>>> q.precision, q.recall       # last 3 outcomes: FP, FN, TP
(0.5, 0.5)
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["OnlineQuality"]

_TP, _FP, _FN = 0, 1, 2


class OnlineQuality:
    """Rolling precision/recall at the alert threshold plus cumulative counts."""

    def __init__(self, window: int = 1000) -> None:
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        self.window = window
        self.tp = 0
        self.fp = 0
        self.fn = 0
        self.tn = 0
        self._recent: deque[int] = deque(maxlen=window)
        self._counts = [0, 0, 0]  # TP, FP, FN within the window

    def update(self, alerted: bool, is_fraud: bool) -> None:
        if alerted:
            kind = _TP if is_fraud else _FP
        elif is_fraud:
            kind = _FN
        else:
            self.tn += 1
            return
        if kind == _TP:
            self.tp += 1
        elif kind == _FP:
            self.fp += 1
        else:
            self.fn += 1
        recent = self._recent
        if len(recent) == self.window:
            self._counts[recent[0]] -= 1
        recent.append(kind)
        self._counts[kind] += 1

    @property
    def window_tp(self) -> int:
        return self._counts[_TP]

    @property
    def window_fp(self) -> int:
        return self._counts[_FP]

    @property
    def window_fn(self) -> int:
        return self._counts[_FN]

    @property
    def precision(self) -> float:
        """Rolling TP / (TP + FP); 0.0 while no alert has resolved."""
        tp, fp, _ = self._counts
        return tp / (tp + fp) if tp + fp else 0.0

    @property
    def recall(self) -> float:
        """Rolling TP / (TP + FN); 0.0 while no fraud has resolved."""
        tp, _, fn = self._counts
        return tp / (tp + fn) if tp + fn else 0.0

    def as_dict(self) -> dict[str, float]:
        """Plain values for metrics, logs and checkpoint metadata."""
        return {
            "precision": self.precision,
            "recall": self.recall,
            "window": self.window,
            "window_tp": self.window_tp,
            "window_fp": self.window_fp,
            "window_fn": self.window_fn,
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "tn": self.tn,
        }

    def state_dict(self) -> dict[str, Any]:
        """Counts and the windowed outcomes as plain values and an array (checkpoints)."""
        return {
            "window": self.window,
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "tn": self.tn,
            "recent": np.array(self._recent, dtype=np.int8),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> OnlineQuality:
        """The tracker a :meth:`state_dict` describes (``ValueError`` if inconsistent)."""
        quality = cls(window=int(state["window"]))
        quality.tp, quality.fp = int(state["tp"]), int(state["fp"])
        quality.fn, quality.tn = int(state["fn"]), int(state["tn"])
        recent = np.asarray(state["recent"]).tolist()
        if len(recent) > quality.window or not set(recent) <= {_TP, _FP, _FN}:
            raise ValueError("quality window holds unexpected outcomes")
        quality._recent.extend(recent)
        quality._counts = [recent.count(_TP), recent.count(_FP), recent.count(_FN)]
        return quality

    def __repr__(self) -> str:
        return (f"OnlineQuality(precision={self.precision:.3f}, recall={self.recall:.3f}, "
                f"tp={self.tp}, fp={self.fp}, fn={self.fn})")
