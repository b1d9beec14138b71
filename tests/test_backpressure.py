"""Backpressure on the stream: a client that does not read costs a bounded amount and is closed.

The queue and the writer are pure logic, tested alone; then a real server with a raw socket
that completes the websocket handshake and never reads (its kernel buffers fill, tornado's
write stays pending) next to a client that reads and must see every kind in order.
"""

from __future__ import annotations

import asyncio
import base64
import os
import random
import socket
import struct
import time
from typing import Any

import orjson
import pytest

from jupyter_gpu_panel.api.send_queue import (
    CLOSE_TOO_SLOW,
    LATEST_ONLY,
    QUEUE_FULL_REASON,
    SendQueue,
    Writer,
    too_slow_reason,
)

from contract import validate_ws_message

# -- the queue -------------------------------------------------------------------------------


def drain(q: SendQueue) -> list[tuple[str, Any]]:
    out = []
    while (item := q.pop()) is not None:
        out.append(item)
    return out


def test_latest_snapshot_and_kernels_replace_queued_ones_others_keep_order():
    q = SendQueue()
    for kind, msg in [
        ("hello", "h"),
        ("snapshot", "s1"),
        ("kernels", "k1"),
        ("config", "c1"),
        ("snapshot", "s2"),
        ("error", "e1"),
        ("kernels", "k2"),
        ("snapshot", "s3"),
    ]:
        assert q.put(kind, msg)
    # an older state document is dropped; the newer goes where it was produced (after c1, e1),
    # so what arrives is a subsequence of what was sent, in the order it was sent
    assert drain(q) == [("hello", "h"), ("config", "c1"), ("error", "e1"), ("kernels", "k2"), ("snapshot", "s3")]
    assert q.replaced == 3 and len(q) == 0


def test_answers_are_bounded_state_documents_are_not_counted():
    q = SendQueue(max_queued=3)
    assert all(q.put("config", i) for i in range(3))
    assert not q.put("error", "one too many")
    assert q.put("snapshot", "s") and q.put("kernels", "k")  # at most one each: always room
    assert [m for _, m in drain(q)] == [0, 1, 2, "s", "k"]
    assert q.put("error", "room again")


@pytest.mark.parametrize("seed", range(20))
def test_random_interleavings_deliver_an_ordered_subsequence_ending_with_the_latest(seed):
    rng = random.Random(seed)
    q = SendQueue(max_queued=8)
    sent: list[tuple[str, int]] = []
    got: list[tuple[str, int]] = []
    for n in range(500):
        if rng.random() < 0.6:
            kind = rng.choice(["snapshot", "kernels", "config", "error"])
            if q.put(kind, n):
                sent.append((kind, n))
        else:
            item = q.pop()
            if item is not None:
                got.append(item)
    got.extend(drain(q))
    positions = [sent.index(m) for m in got]
    assert positions == sorted(positions), "delivered out of order"
    # every answer arrives; of the state documents, at least the last one of each kind
    assert [m for m in got if m[0] not in LATEST_ONLY] == [m for m in sent if m[0] not in LATEST_ONLY]
    for kind in LATEST_ONLY:
        last = [m for m in sent if m[0] == kind][-1:]
        assert [m for m in got if m[0] == kind][-1:] == last


# -- the writer, with writes whose completion the test decides ---------------------------------


class Socket:
    """The I/O side of a ``Writer``: writes complete when the test says so."""

    def __init__(self) -> None:
        self.writes: list[tuple[Any, asyncio.Future]] = []
        self.closed: list[tuple[int, str]] = []

    def write(self, message: Any) -> asyncio.Future:
        fut = asyncio.get_running_loop().create_future()
        self.writes.append((message, fut))
        return fut

    def close(self, code: int, reason: str) -> None:
        self.closed.append((code, reason))

    def take(self) -> None:
        """The client read the write in flight."""
        [fut] = [f for _, f in self.writes if not f.done()]
        fut.set_result(None)


async def test_one_write_in_flight_and_the_latest_state_next():
    sock = Socket()
    w = Writer(sock.write, sock.close, stall_timeout=10)
    w.send("hello", "h")
    for i in range(5):
        w.send("kernels", f"k{i}")
        w.send("snapshot", f"s{i}")
    assert [m for m, _ in sock.writes] == ["h"]  # the rest waits in the queue, not in tornado
    for _ in range(3):
        sock.take()
        await asyncio.sleep(0)
    assert [m for m, _ in sock.writes] == ["h", "k4", "s4"]
    assert w.queue.replaced == 8 and not sock.closed
    w.stop()


async def test_a_client_that_stops_reading_is_closed_with_the_reason():
    sock = Socket()
    w = Writer(sock.write, sock.close, stall_timeout=0.2)
    w.send("snapshot", "s")
    await asyncio.sleep(0.3)
    assert sock.closed == [(CLOSE_TOO_SLOW, "client too slow: not read for 0.2 s")]
    assert w.closed and w.closed_reason == too_slow_reason(0.2)
    w.send("snapshot", "after")  # ignored, not queued
    assert len(w.queue) == 0 and len(sock.writes) == 1


async def test_slow_but_reading_client_is_never_closed():
    # each write takes 0.12 s, over 0.6 s in all: the timeout is per write, not for the chain
    sock = Socket()
    w = Writer(sock.write, sock.close, stall_timeout=0.2)
    for i in range(5):
        w.send("config", i)
    for _ in range(5):
        await asyncio.sleep(0.12)
        sock.take()
    await asyncio.sleep(0.25)
    assert not sock.closed and w.sent == 5
    w.stop()


async def test_answers_never_read_close_the_client():
    sock = Socket()
    w = Writer(sock.write, sock.close, stall_timeout=10, max_queued=4)
    for i in range(6):  # one in flight, 4 queued, the sixth is one too many
        w.send("error", i)
    assert sock.closed == [(CLOSE_TOO_SLOW, QUEUE_FULL_REASON)]


async def test_a_failed_write_stops_the_writer():
    sock = Socket()
    w = Writer(sock.write, sock.close, stall_timeout=10)
    w.send("snapshot", "s")
    w.send("config", "c")
    sock.writes[0][1].set_exception(ConnectionResetError())
    await asyncio.sleep(0)
    assert w.closed and len(w.queue) == 0 and not sock.closed  # gone already: nothing to close


# -- a real server ------------------------------------------------------------------------------


@pytest.fixture
def gpu_panel_config():
    return {"source": "replay", "interval": 0.1, "slow_interval": 0.5, "stream_stall_timeout": 1.5}


async def raw_stalled_client(port: int, path: str, headers: dict[str, str]) -> tuple[socket.socket, bytes]:
    """A websocket handshake on a plain socket, which then reads nothing (tiny receive buffer,
    so the server's writes stall after a few KB). Returns the socket and any bytes past the 101."""
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await loop.sock_connect(sock, ("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
        "User-Agent: never-reads",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    await loop.sock_sendall(sock, ("\r\n".join(lines) + "\r\n\r\n").encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = await loop.sock_recv(sock, 1)  # byte by byte: leave the frames in the kernel
        assert chunk, "server closed during the handshake"
        buf += chunk
    assert buf.startswith(b"HTTP/1.1 101"), buf[:200]
    return sock, b""


async def read_until_close_frame(sock: socket.socket, timeout: float) -> tuple[int, str]:
    """Read the frames the server sent (data frames skipped) up to its close frame."""
    loop = asyncio.get_running_loop()
    buf = bytearray()
    deadline = time.monotonic() + timeout

    async def need(n: int) -> None:
        while len(buf) < n:
            chunk = await asyncio.wait_for(loop.sock_recv(sock, 1 << 20), deadline - time.monotonic())
            assert chunk, "connection ended without a close frame"
            buf.extend(chunk)

    while True:
        await need(2)
        opcode, length = buf[0] & 0x0F, buf[1] & 0x7F
        head = 2
        if length == 126:
            await need(4)
            (length,) = struct.unpack("!H", buf[2:4])
            head = 4
        elif length == 127:
            await need(10)
            (length,) = struct.unpack("!Q", buf[2:10])
            head = 10
        await need(head + length)
        payload = bytes(buf[head : head + length])
        del buf[: head + length]
        if opcode == 0x8:
            return struct.unpack("!H", payload[:2])[0], payload[2:].decode()


def big_kernels_doc(i: int) -> dict[str, Any]:
    # 512 KB, like the kernels document of a few dozen busy probes
    return {"kernels": [], "scripts": [], "pid_namespace": "host", "probe_warnings": [], "culled": [], "i": i,
            "pad": "x" * (512 * 1024)}  # fmt: skip


async def test_a_client_that_never_reads_is_closed_and_readers_keep_their_order(
    jp_ws_fetch, jp_http_port, jp_base_url, jp_auth_header, panel
):
    reader = await jp_ws_fetch("api", "gpu-panel", "stream")
    got: list[dict[str, Any]] = []

    async def read() -> None:
        while (msg := await reader.read_message()) is not None:
            doc = orjson.loads(msg)
            if doc["type"] != "kernels" or "pad" not in doc["kernels"]:
                validate_ws_message(msg)
            got.append({"type": doc["type"], "seq": doc.get("seq"), "t": doc.get("snapshot", {}).get("t"),
                        "at": time.monotonic()})  # fmt: skip

    reading = asyncio.create_task(read())
    sock, _ = await raw_stalled_client(jp_http_port, f"{jp_base_url}api/gpu-panel/stream", jp_auth_header)
    try:
        for _ in range(100):
            slow = [c for c in panel.fanout.clients if c.request.headers.get("User-Agent") == "never-reads"]
            [stalled] = slow or [None]
            if stalled is not None:
                break
            await asyncio.sleep(0.02)
        assert stalled is not None
        stream = stalled.ws_connection.stream
        size = 0
        most_buffered = 0
        t0 = time.monotonic()
        for i in range(20):  # 10 MB to the stalled client within a second
            doc = big_kernels_doc(i)
            panel.fanout.publish_kernels(doc)
            size = len(orjson.dumps({"type": "kernels", "seq": 10**6, "kernels": doc}))
            await asyncio.sleep(0.05)
            if not stream.closed():
                most_buffered = max(most_buffered, len(stream._write_buffer))
        # tornado holds at most the one message in flight (plus its frame header), not the backlog
        assert 0 < most_buffered <= size + 32, (most_buffered, size)
        while stalled in panel.fanout.clients and time.monotonic() - t0 < 6:
            await asyncio.sleep(0.05)
        closed_at = time.monotonic()
        assert stalled not in panel.fanout.clients, "the client that never reads is still served"
        assert 1.5 <= closed_at - t0 < 4
        # the close frame is on the wire behind the message in flight: reading now shows it
        assert await read_until_close_frame(sock, timeout=4) == (1008, "client too slow: not read for 1.5 s")
    finally:
        sock.close()
    await asyncio.sleep(0.5)  # the reader goes on after the other client's end
    reading.cancel()
    reader.close()
    kernels = [m["seq"] for m in got if m["type"] == "kernels"]
    snaps = [m["t"] for m in got if m["type"] == "snapshot"]
    assert kernels == sorted(set(kernels)) and kernels[-1] == panel.fanout.kernels_seq, kernels
    assert snaps == sorted(set(snaps)) and len(snaps) > 10
    assert any(m["type"] == "snapshot" and m["at"] > closed_at + 0.2 for m in got)
