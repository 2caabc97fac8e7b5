"""Is the broker there? One clear answer for logs, /ready, metrics and the exit code.

Faust and aiokafka retry a lost broker forever and log every failed attempt (about a
hundred lines a second), while ``/ready`` keeps answering 200: an orchestrator would never
notice that the stream stopped. :class:`BrokerWatch` probes the cluster's metadata every
``interval`` seconds from a thread (a metadata request, like ``kafka-broker-api-versions``)
and turns the outcome into:

* one log line when the broker becomes unreachable (and one when it is back);
* ``/ready`` 503 and ``kuntur_broker_up`` 0 while it is unreachable;
* after ``deadline_s`` unreachable, a final log line and exit code :data:`EXIT_BROKER_UNREACHABLE`.

:class:`RepeatFilter` keeps the client libraries' retry messages to one per minute and kind.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from config.settings import Settings

log = logging.getLogger("kuntur")

__all__ = ["EXIT_BROKER_UNREACHABLE", "BrokerWatch", "RepeatFilter", "install_repeat_filter"]

#: Exit code of a worker that gave up on an unreachable broker.
EXIT_BROKER_UNREACHABLE = 3

#: Loggers whose repeated warnings are rate-limited (the Kafka clients and Faust's services).
NOISY = ("aiokafka", "kafka", "faust", "mode")

_quiet = logging.getLogger("kuntur.broker-probe")
_quiet.setLevel(logging.CRITICAL)
_quiet.propagate = False


class RepeatFilter(logging.Filter):
    """Let a warning or error of a noisy logger through once per ``window`` seconds per
    (logger, message template); the next one that passes says how many were held back."""

    def __init__(self, window: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.window = window
        self.clock = clock
        self._last: dict[tuple[str, str], float] = {}
        self._held: dict[tuple[str, str], int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or not record.name.startswith(NOISY):
            return True
        key = (record.name, str(record.msg)[:200])
        now = self.clock()
        last = self._last.get(key)
        if last is not None and now - last < self.window:
            self._held[key] = self._held.get(key, 0) + 1
            return False
        self._last[key] = now
        held = self._held.pop(key, 0)
        if held:
            record.msg = f"{record.msg} [{held} like it in the last {self.window:.0f}s not shown]"
        if len(self._last) > 10_000:  # bounded: forget the oldest kinds
            for old in sorted(self._last, key=self._last.__getitem__)[:5_000]:
                self._last.pop(old, None)
        return True


def install_repeat_filter(window: float = 60.0) -> None:
    """Put one :class:`RepeatFilter` on every handler of the root logger (idempotent; call
    again after Faust has set up its logging)."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RepeatFilter) for f in handler.filters):
            handler.addFilter(RepeatFilter(window))


class BrokerWatch:
    """Probes the brokers from a daemon thread; :attr:`up` is the latest answer.

    ``on_give_up`` runs (from the probing thread) once the broker has been unreachable for
    ``deadline_s``; the worker checkpoints and exits there.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        interval: float = 2.0,
        deadline_s: float | None = None,
        on_change: Callable[[bool], None] | None = None,
        on_give_up: Callable[[float], None] | None = None,
    ) -> None:
        self.bootstrap = settings.kafka_bootstrap
        self.config: dict[str, Any] = {**settings.kafka_client_config(), "logger": _quiet}
        self.interval = interval
        self.deadline_s = settings.broker_unreachable_exit_s if deadline_s is None else deadline_s
        self.on_change = on_change
        self.on_give_up = on_give_up
        self.up = True
        self.down_since: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._admin: Any = None

    def probe(self) -> str | None:
        """``None`` if a broker answered a metadata request, else the reason."""
        from confluent_kafka.admin import AdminClient

        if self._admin is None:  # one client: librdkafka reconnects by itself
            self._admin = AdminClient(self.config)
        try:
            meta = self._admin.list_topics(timeout=max(1.0, self.interval))
        except Exception as exc:  # KafkaException: transport failure, timeout
            return str(exc)
        return None if meta.brokers else "no broker in the metadata"

    def check(self, now: float) -> None:
        """One probe and its consequences (also the unit tests' entry point)."""
        reason = self.probe()
        if reason is None:
            if not self.up:
                log.warning("Kafka at %s is reachable again after %.0fs; resuming", self.bootstrap,
                            now - (self.down_since or now))
                self._set(True)
            self.down_since = None
            return
        if self.up:
            self.down_since = now
            log.error(
                "Kafka at %s is unreachable (%s); /ready answers 503, the clients retry, and the worker exits "
                "with code %d if it stays unreachable for %.0fs",
                self.bootstrap, reason, EXIT_BROKER_UNREACHABLE, self.deadline_s,
            )
            self._set(False)
        elif self.down_since is not None and now - self.down_since >= self.deadline_s > 0:
            waited = now - self.down_since
            log.error("Kafka at %s unreachable for %.0fs: giving up (exit %d)", self.bootstrap, waited,
                      EXIT_BROKER_UNREACHABLE)
            if self.on_give_up is not None:
                self.on_give_up(waited)
            self.down_since = None  # once

    def _set(self, up: bool) -> None:
        self.up = up
        if self.on_change is not None:
            self.on_change(up)

    def start(self) -> BrokerWatch:
        def run() -> None:
            while not self._stop.wait(self.interval):
                self.check(time.monotonic())

        self._thread = threading.Thread(target=run, name="kuntur-broker-watch", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
