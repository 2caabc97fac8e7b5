"""``kuntur console``: serve the console, or manage its users.

Importing this module imports only argparse; the web application, Kafka clients and
the store load when the command runs.
"""

from __future__ import annotations

import argparse
import getpass
import sys
import time
from typing import Any

from config.settings import Settings

DESCRIPTION = """The investigators' web console. It reads the alerts topic into a SQLite store
(<data_dir>/console.sqlite3 unless --db), serves the alert queue and alert pages on
http://CONSOLE_HOST:CONSOLE_PORT/, and sends every decision to the labels topic so the
model learns from it. Sign-in is required; add users first:

  kuntur console --add-user ana --role investigator   # asks for the password
  kuntur console                                       # http://127.0.0.1:8765/

A password comes from the terminal (asked twice) or, when stdin is not a terminal, from
the first line of stdin. Adding an existing user replaces its role and password and
ends its sessions."""


def register(sub: Any) -> None:
    p = sub.add_parser(
        "console",
        help="the investigators' web console: alert queue, alert pages, decisions → labels",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--host", dest="console_host", help="bind address (KUNTUR_CONSOLE_HOST, default 127.0.0.1)")
    p.add_argument("--port", dest="console_port", type=int, help="port (KUNTUR_CONSOLE_PORT, default 8765)")
    p.add_argument("--db", dest="console_db", help="the SQLite store (KUNTUR_CONSOLE_DB)")
    p.add_argument("--budget", dest="console_daily_budget", type=int, help="alerts per institution and day")
    p.add_argument("--data-dir", help="data directory holding the default store (KUNTUR_DATA_DIR)")
    p.add_argument("--add-user", metavar="NAME", help="create a user (or replace its role and password) and exit")
    p.add_argument(
        "--role", choices=["investigator", "viewer"], default="viewer", help="with --add-user (default viewer)"
    )
    p.add_argument("--list-users", action="store_true", help="print the users and their roles and exit")
    p.set_defaults(func=run)


def _password() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("password: ")
        if getpass.getpass("again: ") != first:
            raise SystemExit("kuntur: error: the passwords differ")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from console.auth import check_new_password, hash_password
    from console.errors import ConsoleError
    from console.server import serve, store_path
    from console.store import Store

    flags = ("console_host", "console_port", "console_db", "console_daily_budget")
    settings = settings.replace(**{k: getattr(args, k) for k in flags if getattr(args, k) is not None})
    try:
        if args.add_user or args.list_users:
            store = Store(store_path(settings))
            try:
                if args.list_users:
                    for user in store.users():
                        print(f"{user.name}\t{user.role}")
                    return 0
                name = args.add_user.strip()
                if not name or len(name) > 64:
                    raise ConsoleError("a user name has 1 to 64 characters")
                password = _password()
                check_new_password(password)
                created = store.put_user(name, args.role, hash_password(password), time.time())
                print(f"{'added' if created else 'updated'} {name} ({args.role}) in {store.path}")
            finally:
                store.close()
            return 0
        return serve(settings)
    except ConsoleError as exc:
        print(f"kuntur: error: {exc}", file=sys.stderr)
        return 2
