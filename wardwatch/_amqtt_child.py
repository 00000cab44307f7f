"""Child process running the amqtt broker (the embedded fallback when Mosquitto is missing)."""

from __future__ import annotations

import asyncio
import contextlib
import sys

from amqtt.broker import Broker


async def _serve(port: int) -> None:
    config = {
        "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }
    broker = Broker(config)
    await broker.start()
    try:
        await asyncio.Event().wait()
    finally:
        await broker.shutdown()


def main() -> None:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(int(sys.argv[1])))


if __name__ == "__main__":
    main()
