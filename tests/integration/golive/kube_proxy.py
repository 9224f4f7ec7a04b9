"""Services as kube-proxy makes them: one loopback TCP port per Service, forwarding each new
connection to one of the ready pods the Service selects (round robin).

The controllers (``pod_runner.py``) hand over each Service's ready pod ports whenever they
change; a selector change therefore routes the next connection to the new pods, while an
existing connection stays on the pod it was given (as conntrack keeps it with kube-proxy). A
connection while no pod is ready is reset and counted (``refused``).

Not covered: ClusterIPs, several ports per Service (the first port is served), session affinity,
traffic policies, UDP.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections import defaultdict


class ServiceProxy:
    """The Services' loopback ports, served from a thread of its own."""

    def __init__(self) -> None:
        self._backends: dict[str, list[int]] = {}
        self._ports: dict[str, int] = {}
        self._servers: dict[str, asyncio.Server] = {}
        self._next: dict[str, int] = defaultdict(int)
        self._refused: dict[str, int] = defaultdict(int)
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="kube-proxy", daemon=True)
        self._connections: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the Service proxy did not start")

    def stop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(10)

    def _serve(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            self._ready.set()
            await self._stop.wait()
            for server in self._servers.values():
                server.close()
            for task in list(self._connections):
                task.cancel()
            await asyncio.gather(*self._connections, return_exceptions=True)

        asyncio.run(main())

    # --- what the controllers call (any thread) ---------------------------------------------

    def ensure(self, service: str) -> int:
        """The Service's port, listening from now on (the same port for the cluster's life)."""
        with self._lock:
            if service in self._servers:
                return self._ports[service]
        future = asyncio.run_coroutine_threadsafe(self._listen(service), self._loop)
        return future.result(10)

    def remove(self, service: str) -> None:
        with self._lock:
            server = self._servers.pop(service, None)
            self._backends.pop(service, None)
        if server is not None:
            self._loop.call_soon_threadsafe(server.close)

    def set_backends(self, service: str, ports: list[int]) -> None:
        with self._lock:
            self._backends[service] = list(ports)

    def port(self, service: str) -> int | None:
        with self._lock:
            return self._ports.get(service) if service in self._servers else None

    def refused(self, service: str) -> int:
        with self._lock:
            return self._refused[service]

    # --- the forwarding (the proxy's loop) ---------------------------------------------------

    async def _listen(self, service: str) -> int:
        with self._lock:
            if service in self._servers:
                return self._ports[service]
            port = self._ports.get(service, 0)

        async def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            self._connections.add(task)
            try:
                await self._connect(service, reader, writer)
            finally:
                self._connections.discard(task)

        server = await asyncio.start_server(accepted, "127.0.0.1", port, reuse_address=True)
        with self._lock:
            self._servers[service] = server
            self._ports[service] = int(server.sockets[0].getsockname()[1])
            return self._ports[service]

    async def _connect(
        self, service: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        with self._lock:
            backends = self._backends.get(service) or []
            port = backends[self._next[service] % len(backends)] if backends else None
            self._next[service] += 1
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        if port is not None:
            with contextlib.suppress(OSError):
                upstream = await asyncio.open_connection("127.0.0.1", port)
        if upstream is None:
            with self._lock:
                self._refused[service] += 1
            _reset(writer)
            return
        up_reader, up_writer = upstream
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            for each in (writer, up_writer):
                each.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            if writer.can_write_eof():
                writer.write_eof()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset, as a connection to a Service without endpoints gets."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.close()
