"""The world around the test cluster, tested through the front door: httpx (as golive creates its
clients) and curl (as the plan's token command runs) reach the production plan's hosts through
the edge; the identity provider's tokens are accepted by a real service process; Prometheus and
Alertmanager run for real. Every process is gone afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import jwt
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.conftest import free_port, start_server
from tests.integration.golive.edge import (
    AUDIENCE,
    AUTH_HOST,
    GREEN_HOST,
    ISSUER,
    KNOWN_HOSTS,
    PUBLIC_HOST,
    Edge,
    IdentityProvider,
    MonitoringStack,
    ThreadServer,
    start_dependencies,
)

REPO = Path(__file__).resolve().parents[3]
PRODUCTION_PLAN = REPO / "deploy" / "golive" / "production.yaml"
RULES = REPO / "deploy" / "monitoring" / "prometheus" / "rules"
CLIENT_ENV_NAMES = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "CURL_CA_BUNDLE",
)
# The shape of the production plan's auth.token_command: a client-credentials call with curl.
TOKEN_COMMAND = [
    "sh",
    "-c",
    'curl -sf -u "$GOLIVE_CLIENT_ID:$GOLIVE_CLIENT_SECRET" -d grant_type=client_credentials '
    '"${AUTH_TOKEN_URL:-https://auth.example.com/oauth/token}" | jq -r .access_token',
]

needs_curl = pytest.mark.skipif(
    shutil.which("curl") is None or shutil.which("jq") is None,
    reason="curl and jq are needed: apt-get install curl jq (make system-deps)",
)
needs_prometheus = pytest.mark.skipif(
    shutil.which("prometheus") is None
    or (shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")) is None,
    reason="prometheus and prometheus-alertmanager are needed (make system-deps as root)",
)


# --------------------------------------------------------------------------- upstreams


class Upstreams:
    """One ASGI app on several loopback ports; each port answers as the upstream it names.

    ``/echo`` what it was sent; ``/stream?size=N`` N bytes in chunks; ``/together?n=N&group=G``
    answers only once N requests of group G are in flight at once (503 after 20 s);
    ``/metrics`` a tiny exposition."""

    def __init__(self, names: list[str]) -> None:
        self.server = ThreadServer(self, sockets=len(names))
        self.url_of = {
            name: f"http://127.0.0.1:{p}" for name, p in zip(names, self.server.ports, strict=True)
        }
        self._name_of = {p: name for name, p in zip(names, self.server.ports, strict=True)}
        self._waiting: Counter[str] = Counter()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        name = self._name_of[scope["server"][1]]
        query = {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}
        if scope["path"] == "/stream":
            await _stream(send, int(query["size"]))
            return
        if scope["path"] == "/together":
            status = await self._together(query["group"], int(query["n"]))
            await _json(send, status, {"upstream": name})
            return
        if scope["path"] == "/metrics":
            await _text(send, f'edge_test_up{{upstream="{name}"}} 1\n')
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        await _json(
            send,
            200,
            {
                "upstream": name,
                "method": scope["method"],
                "path": scope["path"],
                "query": scope["query_string"].decode(),
                "headers": headers,
                "body_sha256": hashlib.sha256(body).hexdigest(),
                "body_length": len(body),
            },
        )

    async def _together(self, group: str, n: int) -> int:
        self._waiting[group] += 1
        for _ in range(2000):
            if self._waiting[group] >= n:
                return 200
            await asyncio.sleep(0.01)
        return 503


async def _json(send: Any, status: int, doc: dict[str, Any]) -> None:
    body = json.dumps(doc).encode()
    headers = [(b"content-type", b"application/json"), (b"x-upstream-answer", b"yes")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _text(send: Any, text: str) -> None:
    headers = [(b"content-type", b"text/plain; version=0.0.4")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": text.encode()})


def _pattern(size: int) -> bytes:
    block = hashlib.sha256(b"edge").digest() * 2048  # 64 KiB
    return (block * (size // len(block) + 1))[:size]


async def _stream(send: Any, size: int) -> None:
    data = _pattern(size)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    for start in range(0, size, 65536):
        chunk = data[start : start + 65536]
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


@pytest.fixture(scope="module")
def upstreams() -> Iterator[Upstreams]:
    found = Upstreams([*KNOWN_HOSTS, "spare", "exporter"])
    found.server.start()
    yield found
    found.server.stop()


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory, upstreams: Upstreams) -> Iterator[Edge]:
    routes = {host: upstreams.url_of[host] for host in KNOWN_HOSTS}
    with Edge(tmp_path_factory.mktemp("edge"), routes) as running:
        yield running


def base_env() -> dict[str, str]:
    """This process's environment without any proxy or CA setting of the machine's."""
    return {k: v for k, v in os.environ.items() if k.upper() not in CLIENT_ENV_NAMES}


@pytest.fixture
def through_edge(monkeypatch: pytest.MonkeyPatch, edge: Edge) -> Edge:
    """This process's environment as golive's would be: the edge's variables, nothing else."""
    for name in CLIENT_ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    for name, value in edge.env().items():
        monkeypatch.setenv(name, value)
    return edge


def run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)


def curl(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run(["curl", "-sS", "--max-time", "20", *args], env)


def left(processes: list[Any]) -> list[str]:
    """Those of ``processes`` (``ProcessRecord``) still there, zombies too: their pids.

    A process is the pid *and* its start time: pids wrap (pid_max is 32768 here) and a pid
    seen again may be another process's."""
    there = []
    for process in processes:
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/{process.pid}/stat").read_text(encoding="ascii")
            if int(stat.rsplit(")", 1)[1].split()[19]) == process.start_ticks:
                there.append(f"pid {process.pid}: {process.argv[0]}")
    return there


# --------------------------------------------------------------------------- the edge


def test_every_host_the_production_plan_names_is_a_host_of_the_edge() -> None:
    text = PRODUCTION_PLAN.read_text(encoding="utf-8")
    named = set(re.findall(r"https://([a-z0-9.-]+)", text))
    assert named, "the production plan names no https host"
    assert named <= set(KNOWN_HOSTS), f"hosts the edge does not know: {named - set(KNOWN_HOSTS)}"


def test_each_host_answers_from_its_own_upstream_with_httpx_defaults(
    through_edge: Edge,
) -> None:
    for host in KNOWN_HOSTS:
        # As golive creates its clients: trust_env and verify left at their defaults.
        with httpx.Client(base_url=f"https://{host}", timeout=10) as client:
            answer = client.get("/echo", params={"q": "1"})
        assert answer.status_code == 200, answer.text
        doc = answer.json()
        assert doc["upstream"] == host
        assert doc["query"] == "q=1"
        assert doc["headers"]["host"] == host
        assert doc["headers"]["x-forwarded-proto"] == "https"
        assert answer.headers["x-upstream-answer"] == "yes"


def test_authorization_headers_and_bodies_pass_through_both_ways(through_edge: Edge) -> None:
    body = _pattern(3 * 1024 * 1024 + 17)
    with httpx.Client(base_url=f"https://{GREEN_HOST}", timeout=30) as client:
        echoed = client.post(
            "/echo/path%2Fkept",
            content=body,
            headers={"Authorization": "Bearer abc.def.ghi", "X-Custom": "kept"},
        ).json()
        with client.stream("GET", "/stream", params={"size": 5_000_011}) as streamed:
            received = b"".join(streamed.iter_raw())
    assert echoed["method"] == "POST"
    assert echoed["headers"]["authorization"] == "Bearer abc.def.ghi"
    assert echoed["headers"]["x-custom"] == "kept"
    assert echoed["body_length"] == len(body)
    assert echoed["body_sha256"] == hashlib.sha256(body).hexdigest()
    assert streamed.status_code == 200
    assert received == _pattern(5_000_011)


def test_a_kept_alive_connection_carries_many_requests_and_many_run_at_once(
    through_edge: Edge,
) -> None:
    before = len(through_edge.events("tunnel_opened"))
    with httpx.Client(base_url=f"https://{PUBLIC_HOST}", timeout=10) as client:
        answers = [client.get("/echo").status_code for _ in range(5)]
    assert answers == [200] * 5
    assert len(through_edge.events("tunnel_opened")) == before + 1

    results: list[int] = []
    lock = threading.Lock()

    def call() -> None:
        # Each answers only once all eight are in flight at the upstream together.
        with httpx.Client(timeout=30) as client:
            status = client.get(
                f"https://{PUBLIC_HOST}/together", params={"n": 8, "group": "eight"}
            ).status_code
        with lock:
            results.append(status)

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert results == [200] * 8


def test_an_unknown_host_or_port_is_refused_and_nothing_leaves_the_machine(
    through_edge: Edge,
) -> None:
    with pytest.raises(httpx.ProxyError):
        httpx.get("https://registry.example.com/v2/", timeout=10)
    with pytest.raises(httpx.ProxyError):
        httpx.get(f"https://{AUTH_HOST}:8443/", timeout=10)
    refused = curl("-o", "/dev/null", "https://www.example.org/", env=os.environ.copy())
    assert refused.returncode == 56, refused.stderr  # curl: the proxy refused the tunnel
    assert "502" in refused.stderr
    hosts = {e["host"] for e in through_edge.events("edge_refused")}
    assert {"registry.example.com", "www.example.org", AUTH_HOST} <= hosts


def test_tls_verifies_with_the_test_ca_only(edge: Edge) -> None:
    without_ca = {
        **base_env(),
        **{k: v for k, v in edge.env().items() if k not in ("SSL_CERT_FILE", "CURL_CA_BUNDLE")},
    }
    answered = curl("-o", "/dev/null", f"https://{AUTH_HOST}/echo", env=without_ca)
    assert answered.returncode == 60, answered.stderr  # curl: peer certificate not trusted
    script = (
        "import httpx\n"
        "try:\n"
        f"    httpx.get('https://{AUTH_HOST}/echo', timeout=10)\n"
        "except httpx.ConnectError as exc:\n"
        "    print('refused:', exc)\n"
    )
    python = [sys.executable, "-c", script]
    refused = run(python, without_ca)
    assert "CERTIFICATE_VERIFY_FAILED" in refused.stdout, refused.stdout + refused.stderr
    trusted = curl("-f", "-o", "/dev/null", f"https://{AUTH_HOST}/echo", env=edge.env())
    assert trusted.returncode == 0, trusted.stderr


def test_the_proxy_answers_malformed_requests_and_keeps_serving(through_edge: Edge) -> None:
    port = int(through_edge.proxy_url.rsplit(":", 1)[1])
    answers = []
    for head in (b"HELLO\r\n\r\n", b"GET http://bureau.internal/ HTTP/1.1\r\n\r\n", b""):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(head)
            sock.shutdown(socket.SHUT_WR)
            answers.append(sock.recv(200).split(b"\r\n", 1)[0])
    assert answers == [b"HTTP/1.1 400 Bad Request", b"HTTP/1.1 405 Method Not Allowed", b""]
    with httpx.Client(base_url=f"https://{AUTH_HOST}", timeout=10) as client:
        assert client.get("/echo").json()["upstream"] == AUTH_HOST


def test_no_proxy_keeps_loopback_calls_direct(
    monkeypatch: pytest.MonkeyPatch, through_edge: Edge, upstreams: Upstreams
) -> None:
    # Even with every scheme sent to the edge (which answers plain requests with 405), loopback
    # URLs — kubectl proxy, Prometheus, the pods — go straight to their servers.
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, through_edge.proxy_url)
    direct = upstreams.url_of["spare"] + "/echo"
    assert httpx.get(direct, timeout=10).json()["upstream"] == "spare"
    answered = curl("-f", direct, env=os.environ.copy())
    assert answered.returncode == 0, answered.stderr
    assert json.loads(answered.stdout)["upstream"] == "spare"
    monkeypatch.setenv("NO_PROXY", "")
    monkeypatch.setenv("no_proxy", "")
    proxied = httpx.get(direct, timeout=10)
    assert proxied.status_code == 405  # without NO_PROXY it would have gone to the edge


def test_routes_change_while_running_and_a_dead_upstream_is_a_502(
    tmp_path: Path, upstreams: Upstreams
) -> None:
    with Edge(tmp_path, {AUTH_HOST: upstreams.url_of[AUTH_HOST]}) as edge:
        env = {**base_env(), **edge.env()}
        late = curl("-o", "/dev/null", "https://bureau.internal/echo", env=env)
        assert late.returncode == 56, late.stderr  # no upstream yet: refused
        edge.route("bureau.internal", upstreams.url_of["spare"])
        answered = curl("-f", "https://bureau.internal/echo", env=env)
        assert json.loads(answered.stdout)["upstream"] == "spare", answered.stderr
        edge.route("bureau.internal", upstreams.url_of["exporter"])
        answered = curl("-f", "https://bureau.internal/echo", env=env)
        assert json.loads(answered.stdout)["upstream"] == "exporter", answered.stderr

        edge.route(GREEN_HOST, f"http://127.0.0.1:{free_port()}")  # nothing listens there
        dead = curl("-o", "/dev/null", "-w", "%{http_code}", f"https://{GREEN_HOST}/", env=env)
        assert dead.stdout == "502"

        with pytest.raises(ValueError, match="upstream must be"):
            Edge(tmp_path, {AUTH_HOST: "https://auth.example.com"})
        with pytest.raises(ValueError, match="not in the edge's certificate"):
            edge.route("evil.example.net", upstreams.url_of["spare"])
        with pytest.raises(ValueError, match="upstream must be"):
            edge.route(GREEN_HOST, "http://10.0.0.1:80")
        process = edge.process
    assert left([process]) == []


@needs_curl
def test_the_plans_token_command_gets_a_token_through_the_edge(tmp_path: Path) -> None:
    with IdentityProvider(ttl_s=120) as idp, Edge(tmp_path, {AUTH_HOST: idp.url}) as edge:
        env = {
            **base_env(),
            **edge.env(),
            "GOLIVE_CLIENT_ID": idp.client_id,
            "GOLIVE_CLIENT_SECRET": idp.client_secret,
        }
        fetched = run(TOKEN_COMMAND, env)
        assert fetched.returncode == 0, fetched.stderr
        token = fetched.stdout.strip()
        claims = jwt.decode(
            token,
            jwt.PyJWK(idp.jwk()).key,
            algorithms=["RS256"],
            audience=AUDIENCE,
            issuer=ISSUER,
        )
        assert claims["sub"] == idp.client_id
        assert jwt.get_unverified_header(token)["kid"] == idp.kid
        assert idp.issued == 1
        keys = curl("-f", f"https://{AUTH_HOST}/.well-known/jwks.json", env=env)
        assert json.loads(keys.stdout)["keys"][0]["kid"] == idp.kid, keys.stderr

        env["GOLIVE_CLIENT_SECRET"] = "wrong"
        failed = run(TOKEN_COMMAND, env)
        # curl -f prints nothing on the 401, and without pipefail the pipeline still exits 0:
        # an empty token is what golive gets, and must refuse.
        assert (failed.returncode, failed.stdout) == (0, "")
        assert idp.issued == 1


# --------------------------------------------------------------------------- identity provider


def test_identity_provider_issues_client_credentials_tokens_and_refuses_bad_clients() -> None:
    with IdentityProvider(ttl_s=90) as idp:
        basic = httpx.post(
            idp.token_url,
            auth=(idp.client_id, idp.client_secret),
            data={"grant_type": "client_credentials"},
        )
        assert basic.status_code == 200, basic.text
        assert basic.headers["cache-control"] == "no-store"
        issued = basic.json()
        assert issued["token_type"] == "Bearer"
        assert issued["expires_in"] == 90
        claims = jwt.decode(
            issued["access_token"],
            jwt.PyJWKClient(idp.jwks_url).get_signing_key_from_jwt(issued["access_token"]).key,
            algorithms=["RS256"],
            audience="credit-assessment",
            issuer="https://auth.example.com/",
        )
        assert claims["sub"] == idp.client_id
        assert claims["exp"] - claims["iat"] == 90

        form = httpx.post(
            idp.token_url,
            data={
                "grant_type": "client_credentials",
                "client_id": idp.client_id,
                "client_secret": idp.client_secret,
            },
        )
        assert form.status_code == 200, form.text
        assert idp.issued == 2

        wrong = httpx.post(
            idp.token_url, auth=(idp.client_id, "guess"), data={"grant_type": "client_credentials"}
        )
        assert (wrong.status_code, wrong.json()) == (401, {"error": "invalid_client"})
        assert wrong.headers["www-authenticate"].startswith("Basic")
        stranger = httpx.post(
            idp.token_url,
            auth=("someone", idp.client_secret),
            data={"grant_type": "client_credentials"},
        )
        assert stranger.status_code == 401
        anonymous = httpx.post(idp.token_url, data={"grant_type": "client_credentials"})
        assert anonymous.status_code == 401
        grant = httpx.post(
            idp.token_url, auth=(idp.client_id, idp.client_secret), data={"grant_type": "password"}
        )
        assert (grant.status_code, grant.json()) == (400, {"error": "unsupported_grant_type"})
        both = httpx.post(
            idp.token_url,
            auth=(idp.client_id, idp.client_secret),
            data={"grant_type": "client_credentials", "client_id": idp.client_id},
        )
        assert (both.status_code, both.json()) == (400, {"error": "invalid_request"})
        assert httpx.get(idp.token_url).status_code == 405
        assert idp.issued == 2
        assert idp.client_secret not in wrong.text
    with pytest.raises(httpx.ConnectError):
        httpx.get(idp.jwks_url, timeout=5)  # stopped with the block


@pytest.mark.slow
def test_a_real_service_accepts_the_providers_tokens_and_golive_smoke_passes_through_the_edge(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from golive.smoke import Dependency, SmokeRequest, run_smoke

    plan = yaml.safe_load(PRODUCTION_PLAN.read_text(encoding="utf-8"))
    (tmp_path / "data").mkdir()  # the service's DATA_DIR (a volume on Kubernetes)
    with IdentityProvider(ttl_s=600) as idp, start_dependencies(tmp_path, clients=200) as deps:
        server = start_server(
            tmp_path,
            {
                "DATABASE_URL": database_url,
                "JWT_ALGORITHM": "RS256",
                "JWT_JWKS_URL": idp.jwks_url,
                "JWT_ISSUER": ISSUER,
                "JWT_AUDIENCE": AUDIENCE,
                "FLAGD_OFFLINE_FLAG_SOURCE_PATH": str(deps.flag_file),
                **deps.pod_env(),
            },
        )
        try:
            routes = {PUBLIC_HOST: server.url, GREEN_HOST: server.url, AUTH_HOST: idp.url}
            with Edge(tmp_path, {**routes, **deps.routes()}) as edge:
                for name, value in edge.env().items():
                    monkeypatch.setenv(name, value)
                _assess_with_provider_tokens(idp)
                dependencies = tuple(
                    Dependency(d["name"], d["url"], {k: str(v) for k, v in d["expect"].items()})
                    for d in plan["smoke"]["dependencies"]
                )
                token = httpx.post(
                    f"https://{AUTH_HOST}/oauth/token",
                    auth=(idp.client_id, idp.client_secret),
                    data={"grant_type": "client_credentials"},
                    timeout=10,
                ).json()["access_token"]
                report = run_smoke(
                    plan["target"]["kubernetes"]["slot_urls"]["green"],
                    token,
                    SmokeRequest(dependencies=dependencies),
                )
                assert report.passed, [str(c) for c in report.checks]
                names = [c.name for c in report.checks if c.status == "passed"]
                assert "external service: credit bureau" in names
                assert "external service: legacy system" in names
        finally:
            server.stop()
        emulators = deps.processes
    assert len(emulators) == 2
    assert left(emulators) == []


def _assess_with_provider_tokens(idp: IdentityProvider) -> None:
    """Through the public host: the provider's token gets 201; forgeries and stale ones 401."""
    fetched = httpx.post(
        f"https://{AUTH_HOST}/oauth/token",
        auth=(idp.client_id, idp.client_secret),
        data={"grant_type": "client_credentials"},
        timeout=10,
    )
    assert fetched.status_code == 200, fetched.text
    token = fetched.json()["access_token"]
    body = {"clientId": "123e4567-e89b-12d3-a456-426614174000", "loanAmount": 50000, "loanTerm": 12}

    def assess(bearer: str) -> httpx.Response:
        with httpx.Client(base_url=f"https://{PUBLIC_HOST}", timeout=20) as client:
            return client.post(
                "/api/v1/assessment", json=body, headers={"Authorization": f"Bearer {bearer}"}
            )

    accepted = assess(token)
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["id"]

    claims = jwt.decode(token, options={"verify_signature": False})
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(claims, other_key, algorithm="RS256", headers={"kid": idp.kid})
    assert assess(forged).status_code == 401
    assert assess(idp.mint(sub="late", ttl_s=-120)).status_code == 401  # expired past leeway
    assert assess(idp.mint(sub="elsewhere", aud="another-service")).status_code == 401
    assert assess(idp.mint(sub="spoof", iss="https://auth.example.org/")).status_code == 401
    unknown_kid = jwt.encode(claims, other_key, algorithm="RS256", headers={"kid": "not-a-key"})
    # A key id the JWKS does not have is the client's problem (401), not an outage (503).
    refused = assess(unknown_kid)
    assert refused.status_code == 401 and "signing key is not known" in refused.text


# --------------------------------------------------------------------------- monitoring


@pytest.mark.slow
@needs_prometheus
def test_monitoring_stack_scrapes_discovered_targets_loads_rules_and_alerts(
    tmp_path: Path, upstreams: Upstreams
) -> None:
    sd_file = tmp_path / "pods.json"
    sd_file.write_text("[]")
    with MonitoringStack(tmp_path, sd_files=[sd_file]) as stack:
        # The pod cluster rewrites its file as pods come and go: discovery follows.
        pod = upstreams.url_of["spare"].removeprefix("http://")
        labels = {
            "job": "credit-assessment",
            "slot": "green",
            "pod": "credit-assessment-green-abc12",
            "namespace": "credit-assessment",
            "version": "2.0.0",
        }
        partial = sd_file.with_name("pods.json.partial")
        partial.write_text(json.dumps([{"targets": [pod], "labels": labels}]))
        partial.replace(sd_file)
        (target,) = stack.wait_for_up("credit-assessment")
        assert labels.items() <= target["labels"].items()
        assert target["labels"]["instance"] == pod

        stack.add_golive_target(upstreams.url_of["exporter"].removeprefix("http://"))
        stack.wait_for_up("golive")
        series = stack.query('edge_test_up{job="golive"}')
        assert [s["metric"]["upstream"] for s in series] == ["exporter"]
        up = stack.query('up{job="credit-assessment", slot="green"}')
        assert [s["value"][1] for s in up] == ["1"]

        groups = httpx.get(f"{stack.prometheus_url}/api/v1/rules", timeout=5).json()
        loaded = {g["name"] for g in groups["data"]["groups"]}
        committed = {
            g["name"]
            for path in RULES.glob("*.rules.yml")
            for g in yaml.safe_load(path.read_text())["groups"]
        }
        assert loaded == committed and loaded

        assert httpx.get(f"{stack.alertmanager_url}/-/ready", timeout=5).status_code == 200
        wanted = f"{stack.alertmanager_url}/api/v2/alerts"
        _poll(
            lambda: any(
                a["url"] == wanted
                for a in httpx.get(
                    f"{stack.prometheus_url}/api/v1/alertmanagers", timeout=5
                ).json()["data"]["activeAlertmanagers"]
            ),
            "Prometheus never listed its Alertmanager",
        )
        processes = stack.processes
        assert len(processes) == 2
    assert left(processes) == []


def _poll(check: Any, what: str, timeout_s: float = 30) -> None:
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(what)
