"""A tiny dependency-free progress bar for long work (simulating, writing, replaying).

Writes to stderr. On a terminal it redraws one line in place (at most every ``interval``
seconds, default 0.2 s); when stderr is not a terminal (CI logs, pipes, files) it prints
one plain line every ``interval`` seconds (default 10 s) and a final line, so logs stay
readable. Each line shows count/total, percentage, rate per second and the ETA.

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
from typing import TextIO

__all__ = ["Progress", "format_count", "format_duration", "format_rate"]

_BAR_WIDTH = 24


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


class Progress:
    """Count work done and show it. Cheap enough to call ``update`` per item.

    ``total`` may be ``None`` (unknown): then no percentage/ETA is shown.
    ``enabled=False`` makes every method a no-op (e.g. for ``--no-progress``).
    """

    def __init__(
        self,
        total: int | None = None,
        desc: str = "",
        unit: str = "",
        stream: TextIO | None = None,
        enabled: bool = True,
        interval: float | None = None,
    ) -> None:
        self.total = total if total is None else max(0, int(total))
        self.desc = desc
        self.unit = unit
        self.stream: TextIO = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.tty = _isatty(self.stream)
        self.interval = interval if interval is not None else (0.2 if self.tty else 10.0)
        self.count = 0
        self._started = time.monotonic()
        self._next_draw = self._started + self.interval
        self._last_width = 0
        self._closed = False

    # -- context manager ---------------------------------------------------------------
    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- API -----------------------------------------------------------------------------
    def update(self, n: int = 1) -> None:
        """Record ``n`` more items done; redraw if the interval has passed."""
        self.count += n
        if self.enabled:
            now = time.monotonic()
            if now >= self._next_draw:
                self._next_draw = now + self.interval
                self._draw(now, final=False)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._started

    def close(self) -> None:
        """Draw the final state once (ends the in-place line on a terminal)."""
        if self._closed:
            return
        self._closed = True
        if self.enabled:
            self._draw(time.monotonic(), final=True)

    def render(self, now: float | None = None) -> str:
        """The status text (without carriage return or newline)."""
        now = time.monotonic() if now is None else now
        elapsed = max(now - self._started, 1e-9)
        rate = self.count / elapsed
        unit = f" {self.unit}" if self.unit else ""
        parts = [f"{self.desc}:" if self.desc else ""]
        if self.total:
            frac = min(1.0, self.count / self.total)
            if self.tty:
                filled = int(frac * _BAR_WIDTH)
                parts.append("[" + "#" * filled + "-" * (_BAR_WIDTH - filled) + "]")
            parts.append(f"{frac * 100:5.1f}%" if self.tty else f"{frac * 100:.1f}%")
            parts.append(f"{format_count(self.count)}/{format_count(self.total)}{unit}")
        else:
            parts.append(f"{format_count(self.count)}{unit}")
        parts.append(f"{format_rate(rate)}/s")
        if self.total and self.count < self.total and rate > 0:
            parts.append(f"ETA {format_duration((self.total - self.count) / rate)}")
        else:
            parts.append(f"elapsed {format_duration(elapsed)}")
        return " ".join(p for p in parts if p)

    # -- drawing -------------------------------------------------------------------------
    def _draw(self, now: float, final: bool) -> None:
        text = self.render(now)
        try:
            if self.tty:
                pad = " " * max(0, self._last_width - len(text))
                self._last_width = len(text)
                self.stream.write("\r" + text + pad + ("\n" if final else ""))
            else:
                self.stream.write(text + "\n")
            self.stream.flush()
        except (OSError, ValueError):  # closed pipe/stream: progress is best effort
            self.enabled = False
