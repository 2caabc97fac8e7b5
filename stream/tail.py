"""``kuntur alerts``: follow the alerts topic and print each alert for a human."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from confluent_kafka import Consumer

from config.settings import Settings


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
    consumer = Consumer(
        {
            **settings.kafka_client_config(),
            "group.id": f"kuntur-alerts-tail-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest" if from_beginning else "latest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([settings.topic_alerts])
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
