"""``POST /score``: a synchronous what-if decision, answered by the worker holding the account.

A bank's authorisation system POSTs a transaction (the ``transactions`` topic's JSON) to
any worker and gets the score, the would-alert decision, the rules and the reasons,
computed with the current state of that account and merchant and changing nothing
(:mod:`stream.pipeline.whatif`). docs/architecture.md, "The decision API", has the
semantics; in short:

* **Routing.** The account's state lives on the partition its transactions arrive on. The
  worker that received the request looks in its own ``accounts`` table first; otherwise
  it forwards the request (body and ``Authorization``) to the owner of each partition the
  account can be on: Kafka's default key partitioning (murmur2: Java clients, Faust) and
  librdkafka's (CRC32: confluent-kafka, the simulator). Owners come from Faust's table
  routing metadata (``app.router.table_metadata``). A forwarded request carries
  :data:`FORWARDED`; a worker that does not hold the account answers it ``421``, and
  the next candidate is asked. An account no worker holds is new: it is scored with no
  history.
* **Merchant.** The merchant's state lives on its own partition (murmur2 of the merchant
  id), maybe on a third worker: the account's owner reads it with ``GET
  /score/merchant?id=...`` from that worker (or locally). When that fails the answer is
  computed without merchant history and says ``"merchant_state": "unavailable"``.
* **Auth.** With a token (``score_token``/``score_token_file``) every request needs
  ``Authorization: Bearer <token>``. A worker bound to a non-loopback address without a
  token refuses ``/score`` with 403 (and says so at start).
* **Errors.** A transaction the stream would dead-letter gets ``400 {"error": code,
  "detail": ...}`` with the dead-letter topic's codes; one the account has already seen
  gets ``409 {"error": "duplicate"}``; a worker recovering or rebalancing ``503``.
"""

from __future__ import annotations

import base64
import hmac
import ipaddress
import logging
import time
import zlib
from collections.abc import Callable
from typing import Any

import aiohttp
import faust
import orjson
from yarl import URL

from config.settings import Settings
from features.account import AccountState
from features.merchant import MerchantState
from features.transaction import Transaction
from stream.errors import InvalidEvent
from stream.pipeline.pseudonym import Pseudonymiser
from stream.pipeline.reasons import plain_reasons
from stream.pipeline.stages import Pipeline
from stream.pipeline.validation import limits_from, parse_transaction
from stream.pipeline.whatif import what_if
from stream.tables import ExpiringTable
from stream.web import is_ready
from stream.wire import Partitioner

__all__ = ["FORWARDED", "SERVED_BY", "ScoreApi", "add_score_views", "answer", "is_loopback"]

log = logging.getLogger("kuntur")

#: header on requests one worker forwards to another (answered 421 when not the owner)
FORWARDED = "X-Kuntur-Forwarded"
#: response header naming the worker that computed the answer
SERVED_BY = "X-Kuntur-Served-By"
#: longest a worker waits for another worker's answer
FORWARD_TIMEOUT_S = 5.0
JSON = "application/json"


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a bind address) is reachable from this machine only.

    >>> [is_loopback(h) for h in ("127.0.0.1", "::1", "localhost", "0.0.0.0", "10.0.0.5")]
    [True, True, True, False, False]
    """
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def account_partitions(account_id: str, partitions: int) -> list[int]:
    """The partitions an account's transactions can arrive on: Kafka's default (murmur2),
    then librdkafka's (CRC32), without repeats."""
    key = account_id.encode()
    murmur = Partitioner(partitions).of(account_id)
    crc = zlib.crc32(key) % partitions
    return [murmur] if crc == murmur else [murmur, crc]


def answer(
    pipeline: Pipeline, tx: Transaction, account: bytes | None, merchant: bytes | None, merchant_state: str,
    with_features: bool = False,
) -> tuple[int, dict[str, Any]]:
    """The HTTP status and body of one what-if, from the states' bytes (never written back)."""
    result = what_if(
        pipeline,
        AccountState.from_bytes(account) if account else None,
        MerchantState.from_bytes(merchant) if merchant else None,
        tx,
    )
    if result.verdict is None:
        return 409, {"error": "duplicate", "detail": "this account has already seen this transaction_id: "
                     "the stream will not score it again"}  # fmt: skip
    v = result.verdict
    det = pipeline.detector
    body: dict[str, Any] = {
        "transaction_id": tx.transaction_id,
        "score": round(v.scored.score, 6),
        "alert": v.alert,
        "threshold": det.threshold,
        "model_version": det.model.version,
        "rules": v.rules,
        "reasons": plain_reasons(v.scored.reasons, v.features, tx),
        "late": result.late,
        "merchant_state": merchant_state if tx.merchant_id else "none",
    }
    if with_features:
        body["features"] = v.features
    return 200, body


class ScoreApi:
    """The views' logic; ``ready()`` says whether the tables are recovered and partitions held."""

    def __init__(
        self, app: faust.App, settings: Settings, pipeline: Pipeline, accounts: ExpiringTable,
        merchants: ExpiringTable, ready: Callable[[], bool],
    ) -> None:
        self.app, self.settings, self.pipeline = app, settings, pipeline
        self.accounts, self.merchants, self.ready = accounts, merchants, ready
        self.token = settings.score_bearer_token()
        self.refusal: str | None = None
        if self.token is None and not is_loopback(settings.web_host):
            self.refusal = (
                f"POST /score is off: this worker listens on {settings.web_host} (not loopback) and no "
                "score_token is set; set KUNTUR_SCORE_TOKEN_FILE to serve it"
            )
            log.warning("%s", self.refusal)
        key = settings.pseudonymisation_key()
        self.pseudonyms = Pseudonymiser(key) if key else None
        self.partitions = settings.partitions
        self.merchant_partition = Partitioner(settings.partitions).of
        self.limits = limits_from(settings)
        self.clock: Callable[[], float] = time.time

    # -- helpers ------------------------------------------------------------------------

    def denied(self, headers: Any) -> tuple[int, dict[str, Any]] | None:
        """403 when /score is off, 401 without the right bearer token, else None."""
        if self.refusal is not None:
            return 403, {"error": "forbidden", "detail": self.refusal}
        if self.token is None:
            return None
        given = headers.get("Authorization", "")
        scheme, _, value = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), self.token.encode()):
            return 401, {"error": "unauthorized", "detail": "Authorization: Bearer <score_token> required"}
        return None

    def me(self) -> str:
        return str(self.app.conf.canonical_url)

    def owners(self, table: ExpiringTable) -> dict[int, str]:
        """partition → URL of the worker holding it, from Faust's routing metadata."""
        out: dict[int, str] = {}
        for url, topics in self.app.router.table_metadata(table.name).items():
            for partitions in topics.values():
                for p in partitions:
                    out[p] = str(url)
        return out

    def is_me(self, url: str) -> bool:
        a, b = URL(url), URL(self.me())
        return (a.host, a.port) == (b.host, b.port)

    async def _call(self, method: str, url: str, headers: dict[str, str], body: bytes | None) -> tuple[int, bytes]:
        timeout = aiohttp.ClientTimeout(total=FORWARD_TIMEOUT_S)
        client: Any = self.app.http_client
        async with client.request(method, url, data=body, headers=headers, timeout=timeout) as resp:
            return resp.status, await resp.read()

    async def merchant_bytes(self, merchant_id: str, auth: str | None) -> tuple[bytes | None, str]:
        """The merchant's state bytes and where they came from (local / remote / new / unavailable)."""
        owner = self.owners(self.merchants).get(self.merchant_partition(merchant_id))
        states = self.merchants.states
        if merchant_id in states or owner is None or self.is_me(owner):
            raw = states.get(merchant_id)
            return raw, "found" if raw else "new"
        headers = {FORWARDED: "1", **({"Authorization": auth} if auth else {})}
        url = str(URL(owner).with_path("/score/merchant").with_query(id=merchant_id))
        try:
            status, body = await self._call("GET", url, headers, None)
            if status == 200:
                state = orjson.loads(body).get("state")
                return (base64.b64decode(state), "found") if state else (None, "new")
            log.warning("merchant state from %s: HTTP %d", owner, status)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.warning("merchant state from %s failed: %r", owner, exc)
        return None, "unavailable"

    # -- views --------------------------------------------------------------------------

    async def score(self, raw: bytes, headers: Any, query: Any) -> tuple[int, dict[str, Any] | bytes, str]:
        """(status, body, served by) for one POST /score; bytes: a body another worker wrote."""
        refused = self.denied(headers)
        if refused is not None:
            return *refused, self.me()
        try:
            tx = parse_transaction(raw, self.clock(), self.limits)
        except InvalidEvent as err:
            return 400, {"error": err.code, "detail": err.detail}, self.me()
        if self.pseudonyms is not None:
            tx = self.pseudonyms.transaction(tx)
        if not self.ready():
            return 503, {"error": "not-ready", "detail": "recovering or rebalancing: retry shortly"}, self.me()
        account = self.accounts.states.get(tx.account_id)
        if account is None:
            if headers.get(FORWARDED):
                return 421, {"error": "not-here"}, self.me()
            forwarded = await self._forward(tx.account_id, raw, headers, query)
            if forwarded is not None:
                return forwarded
        auth = headers.get("Authorization")
        merchant, where = await self.merchant_bytes(tx.merchant_id, auth) if tx.merchant_id else (None, "none")
        status, body = answer(self.pipeline, tx, account, merchant, where, query.get("features") == "1")
        return status, body, self.me()

    async def _forward(
        self, account_id: str, raw: bytes, headers: Any, query: Any
    ) -> tuple[int, dict[str, Any] | bytes, str] | None:
        """Ask the owners of the account's candidate partitions; None: nobody holds it (new)."""
        owners = self.owners(self.accounts)
        out = {FORWARDED: "1", "Content-Type": JSON}
        if auth := headers.get("Authorization"):
            out["Authorization"] = auth
        for p in account_partitions(account_id, self.partitions):
            owner = owners.get(p)
            if owner is None:
                return 503, {"error": "not-ready", "detail": f"no worker known for partition {p}"}, self.me()
            if self.is_me(owner):
                continue
            url = str(URL(owner).with_path("/score").with_query(dict(query)))
            try:
                status, body = await self._call("POST", url, out, raw)
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.warning("/score forward to %s failed: %r", owner, exc)
                return 503, {"error": "owner-unreachable", "detail": f"the worker holding partition {p} did not "
                             "answer"}, self.me()  # fmt: skip
            if status != 421:
                return status, body, owner
        return None

    async def merchant(self, headers: Any, merchant_id: str) -> tuple[int, dict[str, Any]]:
        """GET /score/merchant?id=: the merchant's state, for the account owner's what-if."""
        refused = self.denied(headers)
        if refused is not None:
            return refused
        if not merchant_id:
            return 400, {"error": "missing-field", "detail": "id"}
        owner = self.owners(self.merchants).get(self.merchant_partition(merchant_id))
        states = self.merchants.states
        if merchant_id not in states and owner is not None and not self.is_me(owner):
            return 421, {"error": "not-here"}
        raw = states.get(merchant_id)
        return 200, {"state": base64.b64encode(raw).decode() if raw else None}


def add_score_views(
    app: faust.App, settings: Settings, pipeline: Pipeline, tables: dict[str, ExpiringTable],
    broker_up: Callable[[], bool] = lambda: True,
) -> ScoreApi:
    """Register ``POST /score`` and ``GET /score/merchant`` on the worker's web server."""
    api = ScoreApi(
        app, settings, pipeline, tables["accounts"], tables["merchants"], lambda: is_ready(app, broker_up)[0]
    )

    def respond(view: Any, status: int, body: dict[str, Any] | bytes, served_by: str) -> Any:
        data = body if isinstance(body, bytes) else orjson.dumps(body)
        headers = {SERVED_BY: served_by}
        if status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        return view.bytes(data, content_type=JSON, status=status, headers=headers)

    @app.page("/score")
    class ScoreView(faust.web.View):
        async def post(self, request: Any) -> Any:
            raw = await request.read()
            return respond(self, *await api.score(raw, request.headers, request.query))

    @app.page("/score/merchant")
    class MerchantView(faust.web.View):
        async def get(self, request: Any) -> Any:
            status, body = await api.merchant(request.headers, request.query.get("id", ""))
            return respond(self, status, body, api.me())

    return api
