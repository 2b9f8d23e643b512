"""SMTP sinks for the journey email benchmark: real SMTP servers that count what they accept.

    python bench/smtp_sink.py --port 2525 [--impl lean|aiosmtpd] [--processes 2]

Prints ``ready`` once listening; on SIGTERM every process prints one line
``count <messages> <bytes> <cpu seconds>`` to stdout and exits, so the
benchmark can check that the sink received every message the worker
ledgered as sent, and what receiving them cost.

Two implementations, so the sink's own cost is visible rather than folded
into the worker's figure:

* ``aiosmtpd`` — the library the tests use, on uvloop, with RFC 2920
  PIPELINING announced (aiosmtpd already reads pipelined commands in
  order; it only does not say so). Roughly 0.4 ms of CPU per message.
* ``lean`` — a small ``asyncio.Protocol`` server for the same dialogue
  (EHLO/HELO, MAIL, RCPT, DATA with dot-transparency, RSET, NOOP, QUIT,
  PIPELINING): replies to a pipelined group leave in one write. It stores
  nothing; it checks the envelope order and counts messages and bytes.

``--processes N`` starts N listeners on one port with ``SO_REUSEPORT``: the
kernel spreads connections over them, as a pool of MTA processes would.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from typing import Any

COUNT = {"messages": 0, "bytes": 0}


class LeanSMTP(asyncio.Protocol):
    """One connection of the lean sink; a tiny state machine over the byte stream."""

    def __init__(self) -> None:
        self.buffer = b""
        self.in_data = False
        self.mail = False
        self.rcpt = 0
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        transport.write(b"220 sink ESMTP ready\r\n")

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        out: list[bytes] = []
        while True:
            if self.in_data:
                if self.buffer.startswith(b".\r\n"):  # an empty message
                    end, skip = -2, 3
                else:
                    end, skip = self.buffer.find(b"\r\n.\r\n"), 5
                    if end < 0:
                        break
                COUNT["messages"] += 1
                COUNT["bytes"] += max(end + 2, 0)
                self.buffer = self.buffer[end + skip :]
                self.in_data, self.mail, self.rcpt = False, False, 0
                out.append(b"250 2.0.0 OK queued\r\n")
                continue
            end = self.buffer.find(b"\r\n")
            if end < 0:
                break
            line, self.buffer = self.buffer[:end], self.buffer[end + 2 :]
            reply = self.command(line)
            if reply is None:
                self.transport.write(b"".join(out) + b"221 2.0.0 Bye\r\n")
                self.transport.close()
                return
            out.append(reply)
        if out:
            self.transport.write(b"".join(out))

    def command(self, line: bytes) -> bytes | None:
        verb = line[:4].upper()
        if verb == b"EHLO":
            return b"250-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 52428800\r\n"
        if verb == b"HELO":
            return b"250 sink\r\n"
        if verb == b"MAIL" and line[4:10].upper() == b" FROM:":
            if self.mail:
                return b"503 5.5.1 nested MAIL\r\n"
            self.mail = True
            return b"250 2.1.0 OK\r\n"
        if verb == b"RCPT" and line[4:8].upper() == b" TO:":
            if not self.mail:
                return b"503 5.5.1 MAIL first\r\n"
            self.rcpt += 1
            return b"250 2.1.5 OK\r\n"
        if verb == b"DATA":
            if not self.rcpt:
                return b"554 5.5.1 no valid recipients\r\n"
            self.in_data = True
            return b"354 End data with <CR><LF>.<CR><LF>\r\n"
        if verb == b"RSET":
            self.mail, self.rcpt = False, 0
            return b"250 2.0.0 OK\r\n"
        if verb == b"NOOP":
            return b"250 2.0.0 OK\r\n"
        if verb == b"QUIT":
            return None
        return b"500 5.5.2 command not recognized\r\n"


class CountingHandler:
    """aiosmtpd handler: announce PIPELINING, count each message."""

    async def handle_EHLO(  # noqa: N802
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        return [responses[0], "250-PIPELINING", *responses[1:]]

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        COUNT["messages"] += 1
        COUNT["bytes"] += len(envelope.original_content or envelope.content or b"")
        return "250 OK"


async def serve(impl: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    if impl == "lean":
        server = await loop.create_server(LeanSMTP, "127.0.0.1", port, reuse_port=True)
    else:
        from aiosmtpd.smtp import SMTP

        handler = CountingHandler()
        server = await loop.create_server(
            lambda: SMTP(handler, hostname="sink"), "127.0.0.1", port, reuse_port=True
        )
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    started = time.process_time()  # imports and start-up are not the sink's per-message cost
    async with server:
        await stop.wait()
    cpu = time.process_time() - started
    print(f"count {COUNT['messages']} {COUNT['bytes']} {cpu:.3f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--impl", choices=["lean", "aiosmtpd"], default="lean")
    parser.add_argument("--processes", type=int, default=1)
    args = parser.parse_args()
    for _ in range(args.processes - 1):
        if os.fork() == 0:
            break
    try:
        import uvloop
    except ImportError:  # plain asyncio: slower, still correct
        asyncio.run(serve(args.impl, args.port))
    else:
        uvloop.run(serve(args.impl, args.port))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
