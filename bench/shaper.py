"""A shaping TCP proxy on loopback: a long, narrow link for benchmarks.

    python bench/shaper.py --target 127.0.0.1:8765 --delay-ms 25 --mbit 400 [--queue BYTES]

Listens on 127.0.0.1 (a free port unless --port) and prints `listening on HOST:PORT` once
ready. Every connection is forwarded to --target through two one-way links (one per
direction), each with:
- a bandwidth cap: bytes leave the link's bottleneck at --mbit, one after another;
- a one-way delay: each byte arrives --delay-ms after it left the bottleneck;
- a bounded queue: at most --queue bytes (default: one round trip's worth at the rate) wait
  for the bottleneck; beyond that the proxy stops reading, so the sender's socket fills
  and it feels back-pressure as it would behind a real bottleneck.
A new connection's first bytes also wait one round trip, as a TCP handshake would make them.

Loopback TCP underneath is fast and lossless, so this shapes time, not TCP's own behaviour
(no loss, no congestion window): what a client pays per request round trip is what shows.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import sys
from collections import deque
from dataclasses import dataclass

READ_SIZE = 64 * 1024


@dataclass(frozen=True)
class Link:
    """One direction: `delay` seconds one way, `rate` bytes per second, `queue` bytes."""

    delay: float
    rate: float
    queue: int


async def _pipe(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    link: Link,
    ready_at: float,
    on_error: asyncio.Event,
) -> None:
    """Move bytes from `reader` to `writer` through `link` until EOF or an error."""
    loop = asyncio.get_running_loop()
    wire_free = ready_at  # when the bottleneck has sent everything accepted so far
    line: deque[tuple[float, bytes]] = deque()  # (arrival time, bytes), in order
    changed = asyncio.Event()
    ended = False

    async def receive() -> None:
        nonlocal wire_free, ended
        try:
            while not on_error.is_set():
                waiting = (wire_free - loop.time()) * link.rate  # bytes not yet sent on
                if waiting > link.queue:
                    await asyncio.sleep((waiting - link.queue) / link.rate)
                    continue
                data = await reader.read(READ_SIZE)
                if not data:
                    break
                wire_free = max(loop.time(), wire_free) + len(data) / link.rate
                line.append((wire_free + link.delay, data))
                changed.set()
        except (ConnectionError, OSError):
            on_error.set()
        finally:
            ended = True
            changed.set()

    async def deliver() -> None:
        try:
            while not on_error.is_set():
                if not line:
                    if ended:
                        break
                    changed.clear()
                    await changed.wait()
                    continue
                wait = line[0][0] - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                    continue
                now = loop.time()
                while line and line[0][0] <= now:
                    writer.write(line.popleft()[1])
                await writer.drain()
            if not on_error.is_set() and writer.can_write_eof():
                writer.write_eof()
        except (ConnectionError, OSError):
            on_error.set()

    await asyncio.gather(receive(), deliver())


async def _serve_connection(
    client_reader: asyncio.StreamReader,
    client_writer: asyncio.StreamWriter,
    target: tuple[str, int],
    up: Link,
    down: Link,
) -> None:
    loop = asyncio.get_running_loop()
    handshake_done = loop.time() + up.delay + down.delay
    try:
        server_reader, server_writer = await asyncio.open_connection(*target)
    except OSError:
        client_writer.close()
        return
    for writer in (client_writer, server_writer):
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    failed = asyncio.Event()
    pipes = [
        asyncio.ensure_future(_pipe(client_reader, server_writer, up, handshake_done, failed)),
        asyncio.ensure_future(_pipe(server_reader, client_writer, down, handshake_done, failed)),
    ]

    async def abort_on_failure() -> None:
        await failed.wait()
        for writer in (client_writer, server_writer):
            writer.transport.abort()

    watcher = asyncio.ensure_future(abort_on_failure())
    try:
        await asyncio.gather(*pipes)
    finally:
        watcher.cancel()
        for writer in (client_writer, server_writer):
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()


async def serve(
    target: tuple[str, int], up: Link, down: Link, port: int = 0, host: str = "127.0.0.1"
) -> None:
    """Run the proxy until cancelled; prints `listening on HOST:PORT` when ready."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _serve_connection(reader, writer, target, up, down)

    server = await asyncio.start_server(handle, host, port)
    bound = server.sockets[0].getsockname()
    print(f"listening on {bound[0]}:{bound[1]}", flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", required=True, help="HOST:PORT to forward to")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0: any free)")
    parser.add_argument("--delay-ms", type=float, required=True, help="one-way delay")
    parser.add_argument("--mbit", type=float, required=True, help="bandwidth cap, Mbit/s")
    parser.add_argument(
        "--queue", type=int, default=None, help="bytes queued at the bottleneck (default: BDP)"
    )
    args = parser.parse_args(argv)
    host, _, port = args.target.rpartition(":")
    delay = args.delay_ms / 1000
    rate = args.mbit * 1e6 / 8
    queue = args.queue if args.queue is not None else max(READ_SIZE, int(rate * 2 * delay))
    link = Link(delay=delay, rate=rate, queue=queue)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve((host or "127.0.0.1", int(port)), link, link, port=args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
