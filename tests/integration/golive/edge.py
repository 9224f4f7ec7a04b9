"""The world around the test cluster: the network edge, the identity provider, the monitoring
stack and the outside systems, all on loopback, for tests that run the shipped production plan.

The production plan names real hosts (the public and preview Ingresses, the bureau, the legacy
system, the identity provider). Here they resolve without /etc/hosts and without touching the
product:

- ``Edge``: a test CA and one server certificate naming every host (made when the edge starts,
  never at import), and an HTTP CONNECT proxy on 127.0.0.1 in a process of its own. ``CONNECT
  host:443`` for a routed host is tunnelled to a TLS server that reverse-proxies by ``Host`` to a
  loopback upstream (``{host: "http://127.0.0.1:P"}``, changeable while running with
  ``route()``); any other host is refused with 502, so nothing leaves the machine. ``env()`` is
  what a client needs (``HTTPS_PROXY``, ``NO_PROXY``, ``SSL_CERT_FILE``, ``CURL_CA_BUNDLE``):
  httpx with its defaults and curl both honour it. Like an Ingress controller that follows a
  Service's endpoints, the edge opens a new upstream connection per request, so a selector
  switch behind a Service port is seen on the next request.
- ``IdentityProvider``: an RSA key, ``GET /.well-known/jwks.json`` and ``POST /oauth/token``
  (OAuth2 client credentials, HTTP Basic or form fields) issuing the RS256 tokens the service
  verifies (``iss`` https://auth.example.com/, ``aud`` credit-assessment, ``sub`` the client id).
- ``MonitoringStack``: real Prometheus (file-based discovery of the pods and of golive's own
  exporter, the committed rules, 1 s intervals) and real Alertmanager.
- ``start_dependencies``: the rehearsal's bureau and legacy emulators on their own data files.

What a real edge adds that this one does not: DNS, a public CA, HTTP/2, load-balancer health
checks, rate limits and a WAF. Every process is stopped by pid, also when a test fails.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
import jwt
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# The hosts the shipped production plan and the pods' settings name.
PUBLIC_HOST = "credit-assessment.example.com"
BLUE_HOST = "credit-assessment-blue.internal"
GREEN_HOST = "credit-assessment-green.internal"
BUREAU_HOST = "bureau.internal"
LEGACY_HOST = "legacy-credit.example.com"
AUTH_HOST = "auth.example.com"
# The cluster's monitoring as the operator's machine reaches it (monitoring.* of the plan).
MONITORING_HOSTS = ("prometheus.internal", "alertmanager.internal", "grafana.internal")
KNOWN_HOSTS = (
    PUBLIC_HOST,
    BLUE_HOST,
    GREEN_HOST,
    BUREAU_HOST,
    LEGACY_HOST,
    AUTH_HOST,
    *MONITORING_HOSTS,
)

ISSUER = f"https://{AUTH_HOST}/"  # deploy/k8s/base/deployment.yaml: JWT_ISSUER
AUDIENCE = "credit-assessment"  # deploy/k8s/base/deployment.yaml: JWT_AUDIENCE
NO_PROXY = "127.0.0.1,localhost,::1"
START_TIMEOUT_S = 20.0
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "expect",  # the TLS server answers 100-continue itself
    }
)


def _log(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


def _wait_until(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} within {timeout_s:g}s")


def _loopback_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(512)
    return sock


def normal_host(host: str) -> str:
    """A host name as the edge compares it: lower case, no port, no trailing dot."""
    host = host.strip().lower()
    if host.startswith("["):
        host = host[1 : host.find("]")]
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    return host.rstrip(".")


def loopback_upstream(url: str) -> str:
    """``url`` when it is an ``http://`` URL on loopback (nothing leaves the machine)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if parts.scheme != "http" or not loopback or parts.port is None:
        raise ValueError(f"an upstream must be http://127.0.0.1:PORT, not {url!r}")
    return url.rstrip("/")


# --------------------------------------------------------------------------- processes


@dataclass
class ChildProcess:
    """A process this test process started (in a session of its own), stopped and reaped by its
    ``Popen``: golive's ``ProcessRecord`` takes the zombie thread-group leader of an exiting Go
    program (Prometheus, Alertmanager) for a dead process and leaves it unreaped."""

    popen: subprocess.Popen[bytes]
    argv: list[str]
    log: Path
    start_ticks: int  # /proc/<pid>/stat field 22: the pid and this tell the process apart

    @classmethod
    def start(
        cls, argv: Sequence[str], env: Mapping[str, str], log: Path, cwd: Path
    ) -> ChildProcess:
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            popen = subprocess.Popen(
                list(argv),
                env=dict(env),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=cwd,
                start_new_session=True,
            )
        stat = Path(f"/proc/{popen.pid}/stat").read_text(encoding="ascii", errors="replace")
        return cls(popen, list(argv), log, int(stat.rsplit(")", 1)[1].split()[19]))

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM, up to ``timeout_s`` to exit, then SIGKILL; reaped either way."""
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)

    def log_tail(self, characters: int = 3000) -> str:
        try:
            return self.log.read_text(encoding="utf-8", errors="replace")[-characters:]
        except OSError:
            return ""


# --------------------------------------------------------------------------- the test CA


@dataclass(frozen=True)
class Certificates:
    ca_file: Path  # the test CA, what clients trust
    cert_file: Path  # the server certificate (every host a SAN) and the CA
    key_file: Path


def issue_certificates(directory: Path, hosts: Sequence[str]) -> Certificates:
    """A CA and one server certificate whose SANs are ``hosts``; valid from an hour ago."""
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "credit-assessment test CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=7))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    server = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=7))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in hosts]), False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    certificates = Certificates(
        directory / "ca.pem", directory / "server.pem", directory / "key.pem"
    )
    certificates.ca_file.write_bytes(ca.public_bytes(pem))
    certificates.cert_file.write_bytes(server.public_bytes(pem) + ca.public_bytes(pem))
    fd = os.open(certificates.key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(
            key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        )
    return certificates


# --------------------------------------------------------------------------- the edge process


class RouteTable:
    """The routes file, re-read whenever it is replaced (``Edge.route`` renames a new one in)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen: tuple[int, int, int] | None = None
        self._routes: dict[str, str] = {}

    def routes(self) -> dict[str, str]:
        try:
            stat = self.path.stat()
        except OSError:
            return self._routes
        seen = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        if seen != self._seen:
            with contextlib.suppress(OSError, ValueError):
                self._routes = {
                    normal_host(h): u for h, u in json.loads(self.path.read_text()).items()
                }
                self._seen = seen
        return self._routes

    def lookup(self, host: str) -> str | None:
        return self.routes().get(normal_host(host))


@dataclass(frozen=True)
class Verdict:
    """What the proxy answers a request head: 200 opens the tunnel to ``host``."""

    status: int
    host: str = ""
    reason: str = ""

    def refusal(self) -> bytes:
        body = (self.reason + "\n").encode()
        phrase = {400: "Bad Request", 405: "Method Not Allowed", 502: "Bad Gateway"}[self.status]
        head = (
            f"HTTP/1.1 {self.status} {phrase}\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        return head.encode() + body


def judge_connect(head: bytes, routes: Mapping[str, str]) -> Verdict:
    """Tunnel ``CONNECT host:443`` for a routed host; refuse anything else, saying why."""
    line = head.split(b"\r\n", 1)[0].decode("latin-1")
    parts = line.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        return Verdict(400, reason="not an HTTP/1.1 request")
    method, target, _ = parts
    if method != "CONNECT":
        return Verdict(405, reason="the test edge only tunnels https (CONNECT host:443)")
    host, _, port = target.rpartition(":")
    host = normal_host(host)
    if port != "443":
        return Verdict(502, host, f"the test edge tunnels port 443 only, not {target}")
    if host not in routes:
        return Verdict(
            502, host, f"{host} is not a host of the test edge (routed: {sorted(routes)})"
        )
    return Verdict(200, host)


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    try:
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
        if sink.can_write_eof():
            sink.write_eof()
    except (ConnectionError, OSError):
        sink.close()


async def _tunnel(
    routes: RouteTable, tls_port: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    try:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            return
        verdict = judge_connect(head, routes.routes())
        if verdict.status != 200:
            _log("edge_refused", status=verdict.status, host=verdict.host, reason=verdict.reason)
            writer.write(verdict.refusal())
            await writer.drain()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", tls_port)
        _log("tunnel_opened", host=verdict.host)
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        up_writer.close()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


class ReverseProxy:
    """An ASGI app: each request to its host's upstream, bodies streamed both ways, headers
    (Authorization too) passed on except the hop-by-hop ones, ``X-Forwarded-*`` added."""

    def __init__(self, routes: RouteTable) -> None:
        self.routes = routes
        self._client: httpx.AsyncClient | None = None

    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                trust_env=False,
                timeout=httpx.Timeout(120.0, connect=5.0),
                # A new upstream connection per request: a Service port behind it picks a ready
                # pod per connection, so the next request already sees a selector switch.
                limits=httpx.Limits(max_connections=512, max_keepalive_connections=0),
            )
        return self._client

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        host = normal_host(next((v for k, v in headers if k == "host"), ""))
        upstream = self.routes.lookup(host)
        if upstream is None:
            await _answer(send, 502, f"no upstream for {host or 'a request without Host'}")
            return
        path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
        query = scope.get("query_string", b"").decode("latin-1")
        url = upstream + path + (f"?{query}" if query else "")
        forwarded = [(k, v) for k, v in headers if k not in HOP_BY_HOP]
        client = scope.get("client") or ("127.0.0.1", 0)
        forwarded += [
            ("x-forwarded-for", client[0]),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", host),
        ]
        has_body = any(k in ("content-length", "transfer-encoding") for k, _ in headers)
        request = self.client().build_request(
            scope["method"], url, headers=forwarded, content=_body(receive) if has_body else None
        )
        try:
            response = await self.client().send(request, stream=True)
        except httpx.TimeoutException:
            await _answer(send, 504, f"the upstream of {host} did not answer in time")
            return
        except httpx.HTTPError as exc:
            _log("upstream_failed", host=host, upstream=upstream, error=type(exc).__name__)
            await _answer(
                send, 502, f"the upstream of {host} is unreachable ({type(exc).__name__})"
            )
            return
        try:
            out = [
                (k, v)
                for k, v in response.headers.raw
                if k.decode("latin-1").lower() not in HOP_BY_HOP
            ]
            await send(
                {"type": "http.response.start", "status": response.status_code, "headers": out}
            )
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await response.aclose()


async def _body(receive: Any) -> Any:
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return
        if message.get("body"):
            yield message["body"]
        if not message.get("more_body"):
            return


async def _answer(send: Any, status: int, text: str) -> None:
    body = (text + "\n").encode()
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", b"%d" % len(body)),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _serve_edge(routes_file: Path, cert: Path, key: Path, ready_file: Path) -> None:
    import uvicorn

    routes = RouteTable(routes_file)
    tls_socket, proxy_socket = _loopback_socket(), _loopback_socket()
    tls_port = tls_socket.getsockname()[1]
    config = uvicorn.Config(
        ReverseProxy(routes),
        ssl_certfile=str(cert),
        ssl_keyfile=str(key),
        lifespan="off",
        log_level="warning",
        access_log=False,
        server_header=False,
        date_header=False,
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    tunnels = await asyncio.start_server(
        lambda r, w: _tunnel(routes, tls_port, r, w), sock=proxy_socket
    )
    serving = asyncio.create_task(server.serve(sockets=[tls_socket]))
    while not server.started and not serving.done():
        await asyncio.sleep(0.02)
    proxy_port = proxy_socket.getsockname()[1]
    partial = ready_file.with_name(ready_file.name + ".partial")
    partial.write_text(json.dumps({"proxy_port": proxy_port, "tls_port": tls_port}))
    partial.replace(ready_file)
    _log("edge_serving", proxy_port=proxy_port, tls_port=tls_port)
    try:
        await serving  # until SIGTERM (uvicorn's handler, in this process's main thread)
    finally:
        tunnels.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The test edge: CONNECT proxy + TLS ingress.")
    for name in ("--routes", "--cert", "--key", "--ready"):
        parser.add_argument(name, type=Path, required=True)
    args = parser.parse_args(argv)
    asyncio.run(_serve_edge(args.routes, args.cert, args.key, args.ready))
    return 0


# --------------------------------------------------------------------------- Edge (test side)


class Edge:
    """The edge for the hosts of ``routes`` (and every known host in its certificate)."""

    def __init__(
        self, tmp_path: Path, routes: Mapping[str, str], hosts: Iterable[str] = KNOWN_HOSTS
    ) -> None:
        self.directory = tmp_path / "edge"
        self.hosts = tuple(dict.fromkeys(normal_host(h) for h in [*hosts, *routes]))
        self._routes = {normal_host(h): loopback_upstream(u) for h, u in routes.items()}
        self._lock = threading.Lock()
        self.process: ChildProcess | None = None
        self.certificates: Certificates | None = None
        self.proxy_url = ""

    @property
    def ca_file(self) -> Path:
        assert self.certificates is not None, "the edge is not started"
        return self.certificates.ca_file

    @property
    def log_file(self) -> Path:
        return self.directory / "edge.log"

    def __enter__(self) -> Edge:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.certificates = issue_certificates(self.directory / "tls", self.hosts)
        self._write_routes()
        ready = self.directory / "ready.json"
        ready.unlink(missing_ok=True)
        argv = [sys.executable, str(Path(__file__).resolve())]
        argv += ["--routes", str(self.directory / "routes.json"), "--ready", str(ready)]
        argv += ["--cert", str(self.certificates.cert_file)]
        argv += ["--key", str(self.certificates.key_file)]
        env = {k: v for k, v in os.environ.items() if k.lower() not in _PROXY_VARIABLES}
        process = self.process = ChildProcess.start(argv, env, self.log_file, self.directory)
        try:
            _wait_until(
                lambda: ready.exists() or not process.alive(),
                START_TIMEOUT_S,
                "the edge did not start",
            )
            if not ready.exists():
                raise RuntimeError(f"the edge exited at start:\n{self.log_tail()}")
        except BaseException:
            self.stop()
            raise
        self.proxy_url = f"http://127.0.0.1:{json.loads(ready.read_text())['proxy_port']}"
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(timeout_s=5)

    def env(self) -> dict[str, str]:
        """What a client process needs to reach the hosts through this edge (any proxy of the
        machine's for plain http is blanked: httpx, curl and kubectl read empty as unset)."""
        return {
            **{name: "" for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")},
            "HTTPS_PROXY": self.proxy_url,
            "https_proxy": self.proxy_url,
            "NO_PROXY": NO_PROXY,
            "no_proxy": NO_PROXY,
            "SSL_CERT_FILE": str(self.ca_file),
            "CURL_CA_BUNDLE": str(self.ca_file),
        }

    def route(self, host: str, url: str) -> None:
        """Send ``host`` to ``url`` from the next request on (an upstream that started late)."""
        name = normal_host(host)
        if name not in self.hosts:
            raise ValueError(f"{name} is not in the edge's certificate: pass it in hosts=")
        with self._lock:
            self._routes[name] = loopback_upstream(url)
            self._write_routes()

    def routes(self) -> dict[str, str]:
        return dict(self._routes)

    def _write_routes(self) -> None:
        path = self.directory / "routes.json"
        partial = path.with_name(f"routes.{uuid.uuid4().hex}.partial")
        partial.write_text(json.dumps(self._routes, indent=2))
        partial.replace(path)

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        """The edge's log events (one JSON object a line), those called ``name`` if given."""
        found = []
        for line in self.log_file.read_text(encoding="utf-8", errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if isinstance(event, dict) and (name is None or event.get("event") == name):
                    found.append(event)
        return found

    def log_tail(self, characters: int = 3000) -> str:
        try:
            return self.log_file.read_text(encoding="utf-8", errors="replace")[-characters:]
        except OSError:
            return ""


_PROXY_VARIABLES = frozenset({"http_proxy", "https_proxy", "all_proxy", "no_proxy"})


# --------------------------------------------------------------------------- a server in a thread


class ThreadServer:
    """An ASGI app served by uvicorn from a thread of this process, on loopback ports of its own
    (several sockets: the app tells them apart by ``scope["server"]``)."""

    def __init__(self, app: Any, sockets: int = 1) -> None:
        import uvicorn

        self.sockets = [_loopback_socket() for _ in range(sockets)]
        self.ports = [int(s.getsockname()[1]) for s in self.sockets]
        config = uvicorn.Config(
            app, lifespan="off", log_level="warning", access_log=False, timeout_graceful_shutdown=1
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": self.sockets}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports[0]}"

    def start(self) -> ThreadServer:
        self.thread.start()
        _wait_until(
            lambda: self.server.started or not self.thread.is_alive(),
            START_TIMEOUT_S,
            "the server did not start",
        )
        if not self.server.started:
            raise RuntimeError("the server stopped at start")
        return self

    def __enter__(self) -> ThreadServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        for sock in self.sockets:
            sock.close()


# --------------------------------------------------------------------------- identity provider


def _basic_credentials(authorization: str) -> tuple[str, str] | None:
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except ValueError:
        return None
    client_id, sep, secret = decoded.partition(":")
    return (unquote(client_id), unquote(secret)) if sep else None


@dataclass(frozen=True)
class TokenRequest:
    """A token request's outcome: the client it authenticated, or the OAuth2 error."""

    client_id: str = ""
    status: int = 200
    error: str = ""


def judge_token_request(
    authorization: str, form: Mapping[str, list[str]], client_id: str, client_secret: str
) -> TokenRequest:
    """RFC 6749 client credentials: HTTP Basic or form fields (not both), the right secret."""
    basic = _basic_credentials(authorization) if authorization else None
    fields = (form.get("client_id", [""])[0], form.get("client_secret", [""])[0])
    if basic is not None and any(fields):
        return TokenRequest(status=400, error="invalid_request")
    given_id, given_secret = basic or fields
    good = hmac.compare_digest(given_id.encode(), client_id.encode()) and hmac.compare_digest(
        given_secret.encode(), client_secret.encode()
    )
    if not given_id or not good:
        return TokenRequest(status=401, error="invalid_client")
    grant = form.get("grant_type", [""])[0]
    if grant != "client_credentials":
        return TokenRequest(
            status=400, error="unsupported_grant_type" if grant else "invalid_request"
        )
    return TokenRequest(client_id=given_id)


class IdentityProvider:
    """An OAuth2 identity provider on loopback issuing the RS256 tokens the service verifies.

    Reached by the pods directly (``jwks_url``) and by golive through the edge as
    ``https://auth.example.com/oauth/token`` (route ``AUTH_HOST`` to ``url``). ``issued`` counts
    the tokens the token endpoint gave out (``mint`` does not count: it is the test's own pen).
    """

    def __init__(
        self,
        ttl_s: int = 300,
        *,
        client_id: str = "golive",
        issuer: str = ISSUER,
        audience: str = AUDIENCE,
    ) -> None:
        self.ttl_s = ttl_s
        self.client_id = client_id
        self.client_secret = ""
        self.issuer = issuer
        self.audience = audience
        self.kid = ""
        self._key: rsa.RSAPrivateKey | None = None
        self._issued = 0
        self._lock = threading.Lock()
        self._server: ThreadServer | None = None

    def __enter__(self) -> IdentityProvider:
        from starlette.applications import Starlette
        from starlette.routing import Route

        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.client_secret = secrets.token_urlsafe(24)
        self.kid = self._thumbprint()
        app = Starlette(
            routes=[
                Route("/.well-known/jwks.json", self._jwks, methods=["GET"]),
                Route("/.well-known/openid-configuration", self._discovery, methods=["GET"]),
                Route("/oauth/token", self._token, methods=["POST"]),
            ]
        )
        self._server = ThreadServer(app).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "the identity provider is not started"
        return self._server.url

    @property
    def jwks_url(self) -> str:
        return f"{self.url}/.well-known/jwks.json"

    @property
    def token_url(self) -> str:
        return f"{self.url}/oauth/token"

    @property
    def public_token_url(self) -> str:
        return f"{self.issuer}oauth/token"

    @property
    def issued(self) -> int:
        with self._lock:
            return self._issued

    def jwk(self) -> dict[str, Any]:
        assert self._key is not None
        from jwt.algorithms import RSAAlgorithm

        key: dict[str, Any] = RSAAlgorithm.to_jwk(self._key.public_key(), as_dict=True)
        return {**key, "kid": self.kid, "use": "sig", "alg": "RS256"}

    def public_key_pem(self) -> str:
        assert self._key is not None
        return (
            self._key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    def mint(self, sub: str = "golive", ttl_s: int | None = None, **claims: Any) -> str:
        """A token as the token endpoint issues it (``claims`` added or overriding)."""
        assert self._key is not None, "the identity provider is not started"
        now = int(time.time())
        body = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": sub,
            "iat": now,
            "nbf": now,
            "exp": now + (self.ttl_s if ttl_s is None else ttl_s),
            "jti": uuid.uuid4().hex,
            **claims,
        }
        return jwt.encode(body, self._key, algorithm="RS256", headers={"kid": self.kid})

    def _thumbprint(self) -> str:
        """RFC 7638: the SHA-256 of the public key's canonical JWK."""
        assert self._key is not None
        numbers = self._key.public_key().public_numbers()

        def b64(value: int) -> str:
            raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
            return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

        canonical = json.dumps(
            {"e": b64(numbers.e), "kty": "RSA", "n": b64(numbers.n)}, separators=(",", ":")
        )
        return (
            base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest())
            .rstrip(b"=")
            .decode()
        )

    async def _jwks(self, _: Any) -> Any:
        from starlette.responses import JSONResponse

        return JSONResponse({"keys": [self.jwk()]}, headers={"Cache-Control": "max-age=300"})

    async def _discovery(self, _: Any) -> Any:
        from starlette.responses import JSONResponse

        return JSONResponse(
            {
                "issuer": self.issuer,
                "token_endpoint": self.public_token_url,
                "jwks_uri": f"{self.issuer}.well-known/jwks.json",
                "grant_types_supported": ["client_credentials"],
                "token_endpoint_auth_methods_supported": [
                    "client_secret_basic",
                    "client_secret_post",
                ],
                "id_token_signing_alg_values_supported": ["RS256"],
            }
        )

    async def _token(self, request: Any) -> Any:
        from starlette.responses import JSONResponse

        form = parse_qs((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
        verdict = judge_token_request(
            request.headers.get("authorization", ""), form, self.client_id, self.client_secret
        )
        no_store = {"Cache-Control": "no-store"}
        if verdict.status != 200:
            headers = dict(no_store)
            if verdict.status == 401:
                headers["WWW-Authenticate"] = f'Basic realm="{AUTH_HOST}"'
            return JSONResponse({"error": verdict.error}, verdict.status, headers=headers)
        token = self.mint(sub=verdict.client_id)
        with self._lock:
            self._issued += 1
        return JSONResponse(
            {"access_token": token, "token_type": "Bearer", "expires_in": self.ttl_s},
            headers=no_store,
        )


# --------------------------------------------------------------------------- monitoring


ALERTMANAGER_QUIET = {
    "route": {"receiver": "nowhere", "group_wait": "1s", "group_interval": "1s"},
    "receivers": [{"name": "nowhere"}],
}


class MonitoringStack:
    """Real Prometheus and Alertmanager on loopback, for the pods and golive's exporter.

    Job ``credit-assessment`` discovers its targets from ``sd_files`` (the pod cluster's file:
    the labels come from it), job ``golive`` from a file ``add_golive_target`` writes; the
    committed rules are loaded; scrape and evaluation every second; alerts go to Alertmanager
    (``alertmanager_config``: a dict or a file; by default every alert goes nowhere).
    """

    def __init__(
        self,
        tmp_path: Path,
        sd_files: Sequence[Path],
        golive_targets: Sequence[str] = (),
        *,
        rules: Sequence[Path] | None = None,
        alertmanager_config: Mapping[str, Any] | Path | None = None,
        interval: str = "1s",
    ) -> None:
        self.directory = tmp_path / "monitoring"
        self.sd_files = [Path(p) for p in sd_files]
        self.golive_sd_file = self.directory / "golive-targets.json"
        self._golive_targets = list(golive_targets)
        self._rules = list(rules) if rules is not None else None
        self._alertmanager_config = alertmanager_config
        self.interval = interval
        self.prometheus: ChildProcess | None = None
        self.alertmanager: ChildProcess | None = None
        self.prometheus_url = ""
        self.alertmanager_url = ""

    def __enter__(self) -> MonitoringStack:
        from golive.rehearsal.prometheus import find

        prometheus = find("prometheus")
        alertmanager = find("prometheus-alertmanager", "alertmanager")
        if prometheus is None or alertmanager is None:
            raise RuntimeError(
                "prometheus and prometheus-alertmanager are needed (make system-deps as root)"
            )
        self.directory.mkdir(parents=True, exist_ok=True)
        self._write_golive_targets()
        try:
            self._start_alertmanager(alertmanager)
            self._start_prometheus(prometheus)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        for process in (self.prometheus, self.alertmanager):
            if process is not None:
                process.stop(timeout_s=10)

    @property
    def processes(self) -> list[ChildProcess]:
        """Prometheus and Alertmanager."""
        return [p for p in (self.prometheus, self.alertmanager) if p is not None]

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.processes]

    def add_golive_target(self, address: str) -> None:
        """Scrape golive's exporter at ``host:port`` as job ``golive`` (picked up within ~1 s)."""
        if address not in self._golive_targets:
            self._golive_targets.append(address)
        self._write_golive_targets()

    def _write_golive_targets(self) -> None:
        groups = (
            [{"targets": list(self._golive_targets), "labels": {}}] if self._golive_targets else []
        )
        partial = self.golive_sd_file.with_name(self.golive_sd_file.name + ".partial")
        partial.write_text(json.dumps(groups, indent=2))
        partial.replace(self.golive_sd_file)

    def config(self, alertmanager_port: int, prometheus_port: int) -> dict[str, Any]:
        from golive.rehearsal.prometheus import repository_rules

        rules = (
            self._rules
            if self._rules is not None
            else sorted(repository_rules().glob("*.rules.yml"))
        )
        refresh = {"refresh_interval": self.interval}
        return {
            "global": {
                "scrape_interval": self.interval,
                "scrape_timeout": self.interval,
                "evaluation_interval": self.interval,
                "external_labels": {"environment": "e2e"},
            },
            "rule_files": [str(Path(p).resolve()) for p in rules],
            "alerting": {
                "alertmanagers": [
                    {"static_configs": [{"targets": [f"127.0.0.1:{alertmanager_port}"]}]}
                ]
            },
            "scrape_configs": [
                {
                    "job_name": "credit-assessment",
                    "metrics_path": "/metrics",
                    "file_sd_configs": [{"files": [str(p) for p in self.sd_files], **refresh}],
                },
                {
                    "job_name": "golive",
                    "metrics_path": "/metrics",
                    "file_sd_configs": [{"files": [str(self.golive_sd_file)], **refresh}],
                },
                {
                    "job_name": "prometheus",
                    "static_configs": [{"targets": [f"127.0.0.1:{prometheus_port}"]}],
                },
            ],
        }

    def _start_alertmanager(self, binary: str) -> None:

        given = self._alertmanager_config
        config = self.directory / "alertmanager.yml"
        if isinstance(given, Path):
            shutil.copyfile(given, config)
        else:
            config.write_text(yaml.safe_dump(dict(given or ALERTMANAGER_QUIET)), encoding="utf-8")
        port = _free_port()
        argv = [
            binary,
            f"--config.file={config}",
            f"--storage.path={self.directory / 'alertmanager-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ]
        self.alertmanager = ChildProcess.start(
            argv, os.environ, self.directory / "alertmanager.log", self.directory
        )
        self.alertmanager_url = f"http://127.0.0.1:{port}"
        _wait_ready("Alertmanager", self.alertmanager_url, self.alertmanager)

    def _start_prometheus(self, binary: str) -> None:

        port = _free_port()
        assert self.alertmanager_url
        am_port = int(self.alertmanager_url.rsplit(":", 1)[1])
        config = self.directory / "prometheus.yml"
        config.write_text(yaml.safe_dump(self.config(am_port, port), sort_keys=False), "utf-8")
        argv = [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={self.directory / 'prometheus-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--storage.tsdb.retention.time=1d",
            "--rules.alert.resend-delay=1s",
        ]
        self.prometheus = ChildProcess.start(
            argv, os.environ, self.directory / "prometheus.log", self.directory
        )
        self.prometheus_url = f"http://127.0.0.1:{port}"
        _wait_ready("Prometheus", self.prometheus_url, self.prometheus)

    def targets(self, job: str | None = None) -> list[dict[str, Any]]:
        """Prometheus' active targets (of ``job``), as ``/api/v1/targets`` lists them."""
        body = httpx.get(f"{self.prometheus_url}/api/v1/targets", timeout=5).json()
        active: list[dict[str, Any]] = body["data"]["activeTargets"]
        return [t for t in active if job is None or t["labels"].get("job") == job]

    def query(self, expr: str) -> list[dict[str, Any]]:
        body = httpx.get(f"{self.prometheus_url}/api/v1/query", params={"query": expr}, timeout=5)
        result: list[dict[str, Any]] = body.json()["data"]["result"]
        return result

    def wait_for_up(self, job: str, count: int = 1, timeout_s: float = 30) -> list[dict[str, Any]]:
        """Until ``count`` targets of ``job`` have been scraped healthy; those targets."""
        up: list[dict[str, Any]] = []

        def enough() -> bool:
            nonlocal up
            with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
                up = [t for t in self.targets(job) if t.get("health") == "up"]
            return len(up) >= count

        _wait_until(enough, timeout_s, f"{count} healthy target(s) of job {job} not scraped")
        return up


def _wait_ready(name: str, url: str, process: ChildProcess) -> None:
    def ready() -> bool:
        if not process.alive():
            raise RuntimeError(f"{name} exited at start:\n{process.log_tail(2000)}")
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(f"{url}/-/ready", timeout=1.0).status_code == 200
        return False

    _wait_until(ready, START_TIMEOUT_S, f"{name} was not ready at {url}")


# --------------------------------------------------------------------------- outside systems


@dataclass(frozen=True)
class Dependencies:
    """The bureau and legacy emulators, and what the pods and the edge need of them."""

    bureau_url: str
    legacy_url: str
    bureau_api_key_file: Path
    flag_file: Path  # the traffic flag, disabled: for a service started outside the cluster
    processes: list[ChildProcess] = field(default_factory=list)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.processes]

    def pod_env(self) -> dict[str, str]:
        return {
            "BUREAU_URL": self.bureau_url,
            "BUREAU_API_KEY_FILE": str(self.bureau_api_key_file),
            "LEGACY_URL": self.legacy_url,
        }

    def routes(self) -> dict[str, str]:
        """The plan's smoke dependencies, ``/health`` and ``/legacy/health``, by their hosts."""
        return {BUREAU_HOST: self.bureau_url, LEGACY_HOST: self.legacy_url}


@contextlib.contextmanager
def start_dependencies(tmp_path: Path, clients: int = 500) -> Iterator[Dependencies]:
    """The rehearsal's emulators (``python -m golive.rehearsal.bureau`` / ``.legacy``, as
    ``golive.rehearsal.emulators`` runs them) on the first ``clients`` seeded clients' data (what
    ``credit-assessment seed --clients N`` writes), the bureau behind an API key in a 0600 file;
    stopped and reaped on exit."""
    from credit_assessment.seed import write_legacy_clients
    from credit_assessment.sources.bureau_export import write_reports
    from golive.rehearsal import emulators
    from golive.traffic.document import write_disabled

    home = tmp_path / "dependencies"
    legacy_file, bureau_file = emulators.data_files(home)
    legacy_file.parent.mkdir(parents=True, exist_ok=True)
    write_legacy_clients(legacy_file, clients)
    write_reports(bureau_file, clients)
    key_file = home / "secrets" / "bureau-api-key"
    key_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(secrets.token_urlsafe(32))
    flag_file = home / "flags" / "flags.json"
    write_disabled(flag_file)
    env = {**os.environ, "BUREAU_API_KEY": key_file.read_text(encoding="utf-8")}
    specs = {
        "bureau": ["--reports", str(bureau_file), "--api-key-env", "BUREAU_API_KEY"],
        "legacy": ["--clients", str(legacy_file)],
    }
    started: dict[str, tuple[ChildProcess, str]] = {}
    try:
        for name, args in specs.items():
            port = _free_port()
            argv = [sys.executable, "-m", f"golive.rehearsal.{name}", *args]
            argv += ["--port", str(port), "--seed", "1"]
            process = ChildProcess.start(argv, env, home / "logs" / f"{name}.log", home)
            started[name] = (process, f"http://127.0.0.1:{port}")
        for name, (process, url) in started.items():
            _wait_answering(name, url + emulators.HEALTH[name][1], process)
        yield Dependencies(
            started["bureau"][1],
            started["legacy"][1],
            key_file,
            flag_file,
            [process for process, _ in started.values()],
        )
    finally:
        for process, _ in started.values():
            process.stop(timeout_s=5)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_answering(name: str, url: str, process: ChildProcess) -> None:
    def answering() -> bool:
        if not process.alive():
            raise RuntimeError(f"the {name} emulator exited at start:\n{process.log_tail(2000)}")
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(url, timeout=1.0).status_code == 200
        return False

    _wait_until(answering, START_TIMEOUT_S, f"the {name} emulator did not answer {url}")


if __name__ == "__main__":
    sys.exit(main())
