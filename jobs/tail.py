"""Print records of a topic as they arrive (read_committed), e.g.

    python -m jobs.tail recommendations [--from-beginning] [--max N] [--timeout S]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("topic", nargs="?", default="recommendations")
    parser.add_argument("--bootstrap-servers", default="127.0.0.1:9092")
    parser.add_argument("--from-beginning", action="store_true")
    parser.add_argument("--max", type=int, default=0, help="stop after N records (0 = never)")
    parser.add_argument("--timeout", type=float, default=0.0, help="stop after S seconds idle (0 = never)")
    parser.add_argument("--raw", action="store_true", help="print values as they are")
    args = parser.parse_args(argv)

    from jobs.kafka_io import consumer

    c = consumer(args.bootstrap_servers, args.topic, f"tail-{uuid.uuid4()}", args.from_beginning)
    seen, last = 0, time.monotonic()
    try:
        while not args.max or seen < args.max:
            msg = c.poll(0.5)
            if msg is None:
                if args.timeout and time.monotonic() - last > args.timeout:
                    break
                continue
            if msg.error():
                print(f"tail: {msg.error()}", file=sys.stderr)
                continue
            seen, last = seen + 1, time.monotonic()
            value = msg.value() or b""
            print(value.decode("utf-8", "replace") if args.raw else _pretty(value), flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        c.close()
    return 0


def _pretty(value: bytes) -> str:
    try:
        rec = json.loads(value)
        items = ", ".join(f"{i['item_id']} ({i['reason']})" for i in rec.get("items", [])[:5])
        return f"user {rec['user_id']:>6} after {rec['event_id']}: {items}  [model {rec['model_version']}]"
    except (ValueError, KeyError, TypeError):
        return value.decode("utf-8", "replace")


if __name__ == "__main__":
    sys.exit(main())
