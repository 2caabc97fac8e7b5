"""Run the console: open the store, start the alert reader and the label sender, serve.

It refuses to listen on anything but loopback while the store has no users: an
investigators' console reachable from the network must require a sign-in.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import signal
from pathlib import Path

from aiohttp import web

from config.settings import Settings
from console.errors import ConsoleError
from console.ingest import Ingest
from console.labels import LabelSender
from console.store import Store
from console.web import AccessLogger, build_app

log = logging.getLogger("kuntur.console")


def store_path(settings: Settings) -> Path:
    return Path(settings.console_db) if settings.console_db else Path(settings.data_dir) / "console.sqlite3"


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1).

    >>> is_loopback("127.0.0.1"), is_loopback("localhost"), is_loopback("0.0.0.0"), is_loopback("10.1.2.3")
    (True, True, False, False)
    """
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, store: Store) -> None:
    if not is_loopback(host) and not store.users():
        raise ConsoleError(
            f"refusing to listen on {host}: no console users exist, so anyone who reaches the port could read "
            "alerts. Add one first: kuntur console --add-user NAME --role investigator"
        )


async def _serve(settings: Settings, store: Store) -> None:
    ingest = Ingest(settings, store)
    sender = LabelSender(settings, store)
    app = build_app(settings, store, sender)
    runner = web.AppRunner(app, access_log_class=AccessLogger, access_log=logging.getLogger("kuntur.console.access"))
    await runner.setup()
    site = web.TCPSite(runner, settings.console_host, settings.console_port)
    await site.start()
    ingest.start()
    url = f"http://{settings.console_host}:{settings.console_port}/"
    print(f"Kuntur console on {url} (store {store.path}; reading {', '.join(ingest.topics)}). Ctrl-C stops it.",
          flush=True)  # fmt: skip
    if not store.users():
        print("  no users yet: kuntur console --add-user NAME --role investigator", flush=True)
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, done.set)
    try:
        await done.wait()
    finally:
        await runner.cleanup()
        await loop.run_in_executor(None, ingest.stop)
        sender.close()


def serve(settings: Settings) -> int:
    store = Store(store_path(settings))
    try:
        check_bind(settings.console_host, store)
        logging.basicConfig(
            level=settings.log_level.upper(), format="[%(asctime)s] [%(levelname)s] %(name)s: %(message)s"
        )
        asyncio.run(_serve(settings, store))
    finally:
        store.close()
    return 0
