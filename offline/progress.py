"""Progress of long offline work (simulating, reading, scoring, replaying), on stderr.

On a terminal the bar is tqdm's: count/total, rate and ETA, redrawn in place. When stderr
is not a terminal (CI logs, pipes, files) — or tqdm, an optional dependency, is not
installed — it prints one plain line every ``interval`` seconds (default 10 s) and a final
line, so logs stay readable. ``enabled=False`` (``--no-progress``) prints nothing.

>>> import io
>>> out = io.StringIO()
>>> with Progress(total=3, desc="demo", stream=out) as bar:
...     bar.update(3)
>>> "3/3" in out.getvalue()
True
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import Any, TextIO

__all__ = ["Progress", "format_count", "format_duration", "format_rate"]


def format_count(n: int | float) -> str:
    """``1234567`` -> ``'1,234,567'``."""
    return f"{int(n):,}"


def format_rate(per_s: float) -> str:
    """Events per second, compact: ``950``, ``12.3k``, ``1.20M``."""
    if per_s >= 1e6:
        return f"{per_s / 1e6:.2f}M"
    if per_s >= 1e4:
        return f"{per_s / 1e3:.1f}k"
    if per_s >= 100:
        return f"{per_s:.0f}"
    return f"{per_s:.1f}"


def format_duration(seconds: float) -> str:
    """``75`` -> ``'1m15s'``, ``3720`` -> ``'1h02m'``, ``4`` -> ``'4s'``."""
    if seconds != seconds or seconds in (float("inf"), float("-inf")):  # NaN / inf
        return "?"
    s = int(round(max(0.0, seconds)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or file-like without isatty
        return False


def _tqdm_class() -> Any | None:
    """tqdm's bar class, or None when tqdm is not installed (it is in the dev and eval extras)."""
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm


class Progress:
    """Count work done and show it. Cheap enough to call ``update`` per item.

    ``total`` may be ``None`` (unknown): then no percentage/ETA is shown.
    ``enabled=False`` makes every method a no-op apart from counting.
    """

    def __init__(
        self,
        total: int | None = None,
        desc: str = "",
        unit: str = "",
        stream: TextIO | None = None,
        enabled: bool = True,
        interval: float = 10.0,
    ) -> None:
        self.total = total if total is None else max(0, int(total))
        self.desc = desc
        self.unit = unit
        self.stream: TextIO = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.interval = interval
        self.count = 0
        self._started = time.monotonic()
        self._next_line = self._started + interval
        self._closed = False
        self._bar: Any = None
        tqdm = _tqdm_class() if enabled and _isatty(self.stream) else None
        if tqdm is not None:
            self._bar = tqdm(
                total=self.total,
                desc=desc or None,
                unit=f" {unit}" if unit else "it",
                unit_scale=True,
                file=self.stream,
                dynamic_ncols=True,
                mininterval=0.2,
            )

    @property
    def tty(self) -> bool:
        """True when tqdm draws the bar (a terminal and tqdm installed)."""
        return self._bar is not None

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def update(self, n: int = 1) -> None:
        """Record ``n`` more items done; redraw (a bar) or print (a line) when due."""
        self.count += n
        if not self.enabled:
            return
        if self._bar is not None:
            self._guard(self._bar.update, n)
            return
        now = time.monotonic()
        if now >= self._next_line:
            self._next_line = now + self.interval
            self._line(now)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._started

    def close(self) -> None:
        """Finish: end the bar's line on a terminal, or print the final plain line."""
        if self._closed:
            return
        self._closed = True
        if not self.enabled:
            return
        if self._bar is not None:
            self._guard(self._bar.close)
        else:
            self._line(time.monotonic())

    def render(self, now: float | None = None) -> str:
        """The plain status line: count/total, percentage, rate and ETA (or elapsed time)."""
        now = time.monotonic() if now is None else now
        elapsed = max(now - self._started, 1e-9)
        rate = self.count / elapsed
        unit = f" {self.unit}" if self.unit else ""
        parts = [f"{self.desc}:" if self.desc else ""]
        if self.total:
            parts.append(f"{min(1.0, self.count / self.total) * 100:.1f}%")
            parts.append(f"{format_count(self.count)}/{format_count(self.total)}{unit}")
        else:
            parts.append(f"{format_count(self.count)}{unit}")
        parts.append(f"{format_rate(rate)}/s")
        if self.total and self.count < self.total and rate > 0:
            parts.append(f"ETA {format_duration((self.total - self.count) / rate)}")
        else:
            parts.append(f"elapsed {format_duration(elapsed)}")
        return " ".join(p for p in parts if p)

    def _line(self, now: float) -> None:
        self._guard(self.stream.write, self.render(now) + "\n")
        self._guard(self.stream.flush)

    def _guard(self, call: Any, *args: Any) -> None:
        """Progress is best effort: a closed pipe or stream switches it off, never fails the work."""
        if not self.enabled:
            return
        try:
            call(*args)
        except (OSError, ValueError):
            self.enabled = False
