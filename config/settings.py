"""One frozen, typed settings object, built once in the entrypoint and passed down.

Precedence (lowest to highest): defaults < TOML file < ``KUNTUR_*`` environment < CLI
overrides. Library code never reads ``os.environ``: the CLI hands the environment in.

>>> s = load_settings(env={"KUNTUR_ALERT_THRESHOLD": "0.8"})
>>> s.alert_threshold
0.8
>>> str(Settings(kafka_sasl_password=Secret("hunter2")).kafka_sasl_password)
'******'
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from config.errors import ConfigError

ENV_PREFIX = "KUNTUR_"
DAY = 86_400.0
#: Shortest model key accepted (characters).
MIN_KEY_CHARS = 32


class Secret:
    """A string that never prints: ``repr``/``str`` are masked, ``reveal()`` gives the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return "Secret('******')"

    def __str__(self) -> str:
        return "******"


def _opt(default: Any, help: str) -> Any:
    """A settings field with its help text (shown by --help and in docs)."""
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True, slots=True)
class Settings:
    """Every knob of a Kuntur worker, simulator and demo. See docs/configuration in README."""

    # Kafka connection. Security is configuration, never code.
    kafka_bootstrap: str = _opt("127.0.0.1:9092", "host:port[,host:port]")
    kafka_security_protocol: str = _opt("PLAINTEXT", "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL")
    kafka_sasl_mechanism: str = _opt("", "PLAIN, SCRAM-SHA-256, SCRAM-SHA-512")
    kafka_sasl_username: str = _opt("", "SASL user")
    kafka_sasl_password: Secret = _opt(Secret(""), "SASL password (masked in logs)")
    kafka_ssl_cafile: str = _opt("", "CA bundle for SSL")

    # Application identity, topics and partitioning.
    app_id: str = _opt("kuntur", "Faust app id = consumer group and internal-topic prefix")
    topic_transactions: str = _opt("transactions", "input transactions topic")
    topic_labels: str = _opt("labels", "input fraud labels topic")
    topic_alerts: str = _opt("alerts", "output alerts topic")
    topic_scores: str = _opt("scores", "optional topic with every scored transaction")
    topic_dlq: str = _opt("transactions-dlq", "dead-letter topic")
    emit_scores: bool = _opt(False, "also write every score to topic_scores")
    partitions: int = _opt(4, "partitions of every topic Kuntur creates (bounds parallelism)")
    replication_factor: int = _opt(1, "replication factor of topics Kuntur creates")

    changelog_seal: bool = _opt(
        True, "broker compatibility (Tansu): end each changelog partition at shutdown; Apache Kafka does not need it"
    )
    consumer_fetch_max_wait_ms: int = _opt(20, "longest a fetch waits for data (Faust's fixed default is 1500 ms)")
    consumer_direct_delivery: bool = _opt(
        False, "hand each fetched message to its stream without Faust's two tasks per message (faust_patches.py)"
    )
    producer_linger_ms: float = _opt(
        10.0, "longest a produced record waits for more to share its request (every hop of a transaction may add it)"
    )
    broker_unreachable_exit_s: float = _opt(
        120.0, "a worker exits (code 3) when no broker answers for this long, at start or while running; 0: never"
    )
    kafka_connect_timeout_s: float = _opt(
        5.0, "a command (and a starting worker) gives up when no broker answers within this long: 'cannot reach Kafka'"
    )

    # Detection.
    alert_threshold: float = _opt(0.5, "score at or above which an alert is emitted")
    model: str = _opt("gam-pairs-asinh", "River candidate (kuntur features --models lists them)")
    label_horizon_s: float = _opt(7 * DAY, "event-time seconds after which an unreported transaction teaches 'genuine'")
    late_tolerance_s: float = _opt(3_600.0, "how late (event time) an event may arrive and still update windows")
    state_ttl_s: float = _opt(35 * DAY, "idle time after which per-entity state expires")
    warmup_genuine: int = _opt(
        1_000, "genuine examples a fresh model learns before its score may alert (rules still fire)"
    )
    state_sweep_interval_s: float = _opt(60.0, "wall-clock seconds between sweeps that delete expired entities")
    pending_capacity: int = _opt(500_000, "max scored transactions kept awaiting a label (bounds memory)")

    # Hostile input: beyond these bounds a message is dead-lettered with a reason.
    max_message_bytes: int = _opt(65_536, "largest transaction/label message accepted (bytes); larger: too-large")
    max_field_chars: int = _opt(256, "longest string field accepted (ids, merchant, device...); longer: bad-value")
    max_amount: float = _opt(1e9, "largest amount accepted (PEN); larger: bad-amount")
    max_future_s: float = _opt(
        86_400.0, "how far ahead of the wall clock an event time may be; further: bad-timestamp (never moves time)"
    )
    currency_rates: str = _opt(
        "", "soles per unit, e.g. USD=3.75,EUR=4.05: replaces config/rates.py's table; other currencies: bad-currency"
    )
    metric_institutions_max: int = _opt(
        100, "distinct institution_id values given their own metric series; later ones count as 'other'"
    )

    # Persistence.
    data_dir: str = _opt("data", "worker data dir (Faust datadir, checkpoints)")
    model_key: Secret = _opt(
        Secret(""), "key that signs and verifies model checkpoints (HMAC-SHA256; >= 32 characters; masked in logs)"
    )
    model_key_file: str = _opt("", "file holding the model key instead (first line); keep it off the data volume")
    pseudonym_key: Secret = _opt(
        Secret(""), "if set: account ids, device ids and IP addresses are replaced by keyed pseudonyms on entry"
    )
    pseudonym_key_file: str = _opt("", "file holding the pseudonym key instead (first line)")
    checkpoint_interval_s: float = _opt(
        60.0, "wall-clock seconds between model checkpoints (and shared-model snapshots)"
    )
    shared_model: bool = _opt(
        True, "all workers learn from one training log, start from the newest model snapshot on Kafka (architecture.md)"
    )
    training_retention_s: float = _opt(2 * DAY, "how long the shared model's training log keeps examples")

    # Operations.
    web_host: str = _opt("127.0.0.1", "bind address of /metrics (0.0.0.0 in containers)")
    web_port: int = _opt(6066, "port of /metrics, /health and /ready")
    web_advertised_host: str = _opt(
        "", "host other workers reach this one at (forwarded POST /score); default web_host; in containers the hostname"
    )
    score_token: Secret = _opt(
        Secret(""),
        "bearer token POST /score requires (>= 32 characters; masked in logs); without one, /score answers only"
        " when web_host is loopback",
    )
    score_token_file: str = _opt("", "file holding the /score bearer token instead (first line)")
    log_level: str = _opt("info", "debug, info, warning, error")
    log_format: str = _opt("text", "text (human) or json (one object per line: ts, level, logger, message, extras)")
    alert_budget_ratio: float = _opt(
        0.01, "expected share of transactions that alert; dashboards and alert rules compare the alert rate with it"
    )

    # The investigators' console (``kuntur console``).
    console_host: str = _opt(
        "127.0.0.1", "bind address of the console; anything but loopback is refused until a user exists"
    )
    console_port: int = _opt(8765, "port of the console's web pages")
    console_db: str = _opt(
        "", "the console's SQLite file (alerts, decisions, users); empty: <data_dir>/console.sqlite3"
    )
    console_daily_budget: int = _opt(
        50, "alerts per institution and day the investigators can handle; the queue shows which fall outside"
    )
    timezone: str = _opt(
        "America/Lima", "IANA zone of times written without one (simulate, evaluate, replay) and of days shown"
    )
    console_session_idle_s: float = _opt(1_800.0, "a console session expires after this many seconds unused")
    console_session_max_s: float = _opt(43_200.0, "a console session expires this long after login, used or not")

    def as_dict(self) -> dict[str, Any]:
        """Settings as plain values for logs; secrets stay masked."""
        return {f.name: (str(v) if isinstance(v, Secret) else v) for f in fields(self) for v in [getattr(self, f.name)]}

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **_coerce_all(changes, source="override"))

    def currency_table(self) -> dict[str, float]:
        """Soles per unit of each accepted currency: ``currency_rates`` if set, else config/rates.py."""
        from config.rates import PEN_PER_UNIT, parse_rates

        return parse_rates(self.currency_rates) if self.currency_rates.strip() else dict(PEN_PER_UNIT)

    def kafka_client_config(self) -> dict[str, str]:
        """librdkafka (confluent-kafka) connection settings."""
        conf = {"bootstrap.servers": self.kafka_bootstrap, "security.protocol": self.kafka_security_protocol}
        if self.kafka_sasl_mechanism:
            conf["sasl.mechanism"] = self.kafka_sasl_mechanism
            conf["sasl.username"] = self.kafka_sasl_username
            conf["sasl.password"] = self.kafka_sasl_password.reveal()
        if self.kafka_ssl_cafile:
            conf["ssl.ca.location"] = self.kafka_ssl_cafile
        if self.kafka_security_protocol.upper() in ("SSL", "SASL_SSL"):
            conf["ssl.endpoint.identification.algorithm"] = "https"  # verify the broker's host name
        return conf

    def model_signing_key(self) -> bytes:
        """The checkpoint key (``model_key``, else the first line of ``model_key_file``).

        There is no default key: a worker refuses to start without one, so a checkpoint
        planted by whoever can write the data volume is never deserialised.
        """
        text = _key_text(self.model_key, self.model_key_file, "model_key_file")
        if not text:
            raise ConfigError(
                "no model key: set KUNTUR_MODEL_KEY or KUNTUR_MODEL_KEY_FILE (checkpoints are signed with it); "
                "`kuntur keygen --out FILE` writes a new random key"
            )
        if len(text) < MIN_KEY_CHARS:
            raise ConfigError(f"the model key must be at least {MIN_KEY_CHARS} characters (32 random bytes as hex: 64)")
        return text.encode()

    def pseudonymisation_key(self) -> bytes | None:
        """The pseudonym key (``pseudonym_key`` or ``pseudonym_key_file``), or ``None``: no pseudonyms."""
        text = _key_text(self.pseudonym_key, self.pseudonym_key_file, "pseudonym_key_file")
        if text and len(text) < MIN_KEY_CHARS:
            raise ConfigError(f"the pseudonym key must be at least {MIN_KEY_CHARS} characters")
        return text.encode() if text else None

    def score_bearer_token(self) -> str | None:
        """The token ``POST /score`` requires (``score_token`` or ``score_token_file``), or ``None``."""
        text = _key_text(self.score_token, self.score_token_file, "score_token_file")
        if text and len(text) < MIN_KEY_CHARS:
            raise ConfigError(f"the /score token must be at least {MIN_KEY_CHARS} characters")
        return text or None

    @property
    def kafka_bootstrap_servers(self) -> list[str]:
        return [s.strip() for s in self.kafka_bootstrap.split(",") if s.strip()]


def _key_text(secret: Secret, path: str, setting: str) -> str:
    """A key given inline, else the first line of its file ('' if neither)."""
    text = secret.reveal()
    if not text and path:
        try:
            text = Path(path).read_text().strip().splitlines()[0].strip()
        except (OSError, IndexError) as exc:
            raise ConfigError(f"{setting} {path!r} cannot be read: {exc}") from None
    return text


_FIELDS = {f.name: f for f in fields(Settings)}


def env_names() -> list[str]:
    """Every environment variable the settings object reads."""
    return [ENV_PREFIX + name.upper() for name in _FIELDS]


def _coerce(name: str, value: Any, source: str) -> Any:
    if name not in _FIELDS:
        raise ConfigError(f"unknown setting {name!r} (from {source}); known: {', '.join(sorted(_FIELDS))}")
    kind: type[Any] = type(_FIELDS[name].default)
    try:
        if kind is Secret:
            return value if isinstance(value, Secret) else Secret(str(value))
        if kind is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text not in {"1", "0", "true", "false", "yes", "no", "on", "off"}:
                raise ValueError(text)
            return text in {"1", "true", "yes", "on"}
        if kind is int and isinstance(value, float) and not value.is_integer():
            raise ValueError(value)
        return kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"setting {name!r} from {source} must be {kind.__name__}, got {value!r}") from None


def _coerce_all(values: Mapping[str, Any], source: str) -> dict[str, Any]:
    return {k: _coerce(k, v, source) for k, v in values.items()}


def load_settings(
    env: Mapping[str, str] | None = None,
    path: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build settings from an optional TOML file, ``KUNTUR_*`` variables and overrides.

    The TOML file may be given by ``path`` or ``KUNTUR_CONFIG``; keys are setting names,
    either at the top level or under a ``[kuntur]`` table.
    """
    env = env or {}
    values: dict[str, Any] = {}
    path = path or env.get(ENV_PREFIX + "CONFIG")
    if path:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file {str(p)!r} does not exist")
        with p.open("rb") as fh:
            data = tomllib.load(fh)
        values.update(_coerce_all(data.get("kuntur", data), source=str(p)))
    for key, raw in env.items():
        if key.startswith(ENV_PREFIX) and key != ENV_PREFIX + "CONFIG":
            values[key[len(ENV_PREFIX) :].lower()] = _coerce(key[len(ENV_PREFIX) :].lower(), raw, source=key)
    values.update(_coerce_all({k: v for k, v in (overrides or {}).items() if v is not None}, "override"))
    settings = Settings(**values)
    _check(settings)
    return settings


LOG_FORMATS = ("text", "json")


KAFKA_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")


def _check(s: Settings) -> None:
    protocol = s.kafka_security_protocol.upper()
    if protocol not in KAFKA_PROTOCOLS:
        raise ConfigError(f"kafka_security_protocol must be one of {', '.join(KAFKA_PROTOCOLS)}, not {protocol!r}")
    if protocol.startswith("SASL_") and not s.kafka_sasl_mechanism:
        raise ConfigError(f"kafka_security_protocol {protocol} needs kafka_sasl_mechanism (e.g. SCRAM-SHA-512)")
    if not protocol.startswith("SASL_") and s.kafka_sasl_mechanism:
        raise ConfigError(
            f"kafka_sasl_mechanism is set but kafka_security_protocol is {protocol}: "
            "use SASL_SSL (SASL_PLAINTEXT sends credentials unencrypted)"
        )
    if not 0.0 <= s.alert_threshold <= 1.0:
        raise ConfigError(f"alert_threshold must be in [0, 1], got {s.alert_threshold}")
    if not 0.0 < s.alert_budget_ratio <= 1.0:
        raise ConfigError(f"alert_budget_ratio must be in (0, 1], got {s.alert_budget_ratio}")
    if s.log_format not in LOG_FORMATS:
        raise ConfigError(f"log_format must be one of {', '.join(LOG_FORMATS)}, got {s.log_format!r}")
    if s.partitions < 1:
        raise ConfigError(f"partitions must be >= 1, got {s.partitions}")
    if s.console_daily_budget < 1:
        raise ConfigError(f"console_daily_budget must be >= 1, got {s.console_daily_budget}")
    if s.console_session_idle_s <= 0 or s.console_session_max_s <= 0:
        raise ConfigError("console_session_idle_s and console_session_max_s must be > 0")
    for name in (
        "label_horizon_s",
        "late_tolerance_s",
        "state_ttl_s",
        "checkpoint_interval_s",
        "state_sweep_interval_s",
        "producer_linger_ms",
    ):
        if getattr(s, name) < 0:
            raise ConfigError(f"{name} must be >= 0")


REFERENCE_BEGIN = "<!-- settings-reference:begin (generated from config/settings.py: do not edit by hand) -->"
REFERENCE_END = "<!-- settings-reference:end -->"


def _markdown_default(value: Any) -> str:
    if isinstance(value, Secret):
        return "*(secret)*"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if value == "":
        return "*(empty)*"
    return f"`{value}`"


def reference_markdown() -> str:
    """The configuration reference as a Markdown table, generated from :class:`Settings`.

    docs/operations.md embeds it between :data:`REFERENCE_BEGIN` and :data:`REFERENCE_END`;
    :func:`update_reference` rewrites that block and a unit test keeps it current.

    >>> reference_markdown().splitlines()[2].startswith("| `kafka_bootstrap` | `KUNTUR_KAFKA_BOOTSTRAP` |")
    True
    """
    rows = ["| setting | environment | default | meaning |", "|---|---|---|---|"]
    for f in fields(Settings):
        help_text = str(f.metadata.get("help", "")).replace("|", "\\|")
        rows.append(f"| `{f.name}` | `{ENV_PREFIX}{f.name.upper()}` | {_markdown_default(f.default)} | {help_text} |")
    return "\n".join(rows) + "\n"


def update_reference(path: str | Path) -> bool:
    """Regenerate the settings table inside ``path`` (between the markers); True if it changed.

    ``python -c 'from config.settings import update_reference; update_reference("docs/operations.md")'``
    """
    p = Path(path)
    text = p.read_text(encoding="utf-8")
    head, begin, rest = text.partition(REFERENCE_BEGIN)
    body, end, tail = rest.partition(REFERENCE_END)
    if not begin or not end:
        raise ConfigError(f"{p} has no settings reference markers ({REFERENCE_BEGIN} ... {REFERENCE_END})")
    new = f"{head}{REFERENCE_BEGIN}\n{reference_markdown()}{REFERENCE_END}{tail}"
    if new == text:
        return False
    p.write_text(new, encoding="utf-8")
    return True
