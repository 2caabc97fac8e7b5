"""``kuntur alerts``: follow the alerts topic and print each alert for a human."""

from __future__ import annotations

from typing import Any

import orjson

from config.settings import Settings
from stream.kafka.reader import topic_reader


def format_alert(alert: dict[str, Any]) -> str:
    head = (
        f"{alert['event_time']}  score {alert['score']:.3f}  account {alert['account_id']}  "
        f"tx {alert['transaction_id']}  bank {alert.get('institution_id') or '-'}  model {alert['model_version']}"
    )
    lines = [head]
    if alert.get("rules"):
        lines.append(f"    rules: {', '.join(alert['rules'])}")
    for reason in alert.get("reasons", []):
        lines.append(f"    - {reason['text']}  ({reason['feature']}, contribution {reason['contribution']:+.3f})")
    return "\n".join(lines)


def tail_alerts(settings: Settings, from_beginning: bool = False, as_json: bool = False, limit: int = 0) -> int:
    consumer = topic_reader(settings, settings.topic_alerts, from_beginning=from_beginning)
    seen = 0
    try:
        while not limit or seen < limit:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            value = msg.value() or b""
            print(value.decode() if as_json else format_alert(orjson.loads(value)), flush=True)
            seen += 1
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()
    return 0
