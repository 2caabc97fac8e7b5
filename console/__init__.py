"""The investigators' console (``kuntur console``): alert queue, alert pages, decisions → labels.

It consumes the ``alerts`` topic (and ``scores`` when the workers emit them) into an
embedded SQLite store, serves server-rendered pages (no JavaScript) to signed-in users,
and produces every investigator's decision as a Label to the ``labels`` topic, so the
online model learns from it. Decisions are append-only: a correction is a new event.

Modules: :mod:`console.store` (schema, migrations, queries), :mod:`console.auth`
(passwords, sessions, CSRF), :mod:`console.ingest` (Kafka → store),
:mod:`console.labels` (decisions → Kafka), :mod:`console.pages` (HTML),
:mod:`console.web` (the aiohttp application), :mod:`console.cli` (the subcommand).
Importing this package imports none of them.
"""
