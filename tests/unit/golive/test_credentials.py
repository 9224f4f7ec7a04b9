"""Where golive's bearer token comes from (the plan's ``auth``): each provider, reuse and
refresh, the 401 retry, errors that say what to do and never show a token — and a go-live on
the fake target whose checks reach a real local HTTP service that accepts only the identity
provider's current token, with the token never in the journal, the report or the output."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import shutil
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from golive import cli, credentials
from golive.credentials import (
    CommandToken,
    EnvToken,
    FileToken,
    ReusedToken,
    ServiceCliToken,
    redact,
    shell_export,
)
from golive.errors import CredentialError, run_outcome
from golive.journal import Control, open_run
from golive.plan import Auth, load
from golive.steps.base import StepContext
from golive.steps.performance import PerformanceGreen
from golive.steps.smoke import SmokeGreen
from golive.targets.fake import FakeTarget

REPO = Path(__file__).resolve().parents[3]


def jwt_like() -> str:
    """A fresh token shaped like the identity provider's (header.payload.signature)."""
    return ".".join(["eyJhbGciOiJSUzI1NiJ9", secrets.token_urlsafe(24), secrets.token_urlsafe(32)])


def command(tmp_path: Path, body: str) -> list[str]:
    """A token command: a Python script (the test's stand-in for curl | jq)."""
    script = tmp_path / f"token-{secrets.token_hex(3)}.py"
    script.write_text(body, encoding="utf-8")
    return [sys.executable, str(script)]


# --- the providers ---------------------------------------------------------------------------


def test_env_token_is_the_variable_and_an_unset_one_says_what_to_do() -> None:
    token = jwt_like()
    assert EnvToken("GOLIVE_TOKEN", {"GOLIVE_TOKEN": f" {token}\n"})() == token
    with pytest.raises(CredentialError) as caught:
        EnvToken("GOLIVE_TOKEN", {"GOLIVE_TOKEN": "  "})()
    assert "auth.token_env names GOLIVE_TOKEN, which is unset or empty" in caught.value.message
    assert "export GOLIVE_TOKEN" in caught.value.hint
    assert caught.value.exit_code == 8 and run_outcome(caught.value).exit_code == 8


def test_file_token_is_the_content_stripped_and_missing_or_empty_files_are_errors(
    tmp_path: Path,
) -> None:
    token = jwt_like()
    path = tmp_path / "token"
    path.write_text(token + "\n", encoding="utf-8")
    assert FileToken(path)() == token
    with pytest.raises(CredentialError, match=r"token_file .*missing cannot be read: No such file"):
        FileToken(tmp_path / "missing")()
    path.write_text("\n", encoding="utf-8")
    with pytest.raises(CredentialError, match="is empty") as caught:
        FileToken(path)()
    assert "golive run PLAN --resume" in caught.value.hint


def test_command_token_is_its_stdout_and_needs_no_shell(tmp_path: Path) -> None:
    token = jwt_like()
    argv = command(tmp_path, f"import os; print({token!r} + os.environ['SUFFIX'])")
    assert CommandToken(argv, environ={"SUFFIX": "x"})() == token + "x"
    # An argument with shell syntax reaches the command as it is: no shell parses it.
    echo = [sys.executable, "-c", "import sys; print(sys.argv[1])", "$(reboot);`id`|x"]
    assert CommandToken(echo)() == "$(reboot);`id`|x"


def test_a_failing_command_shows_its_code_and_redacted_stderr_never_its_stdout(
    tmp_path: Path,
) -> None:
    token, secret = jwt_like(), secrets.token_urlsafe(30) + "A1"
    argv = command(
        tmp_path,
        "import sys\n"
        f"print({token!r})\n"
        f"print('curl: (22) 401 invalid_client for secret {secret} issued {token}',"
        " file=sys.stderr)\n"
        "sys.exit(22)\n",
    )
    with pytest.raises(CredentialError) as caught:
        CommandToken(argv)()
    message = caught.value.message + caught.value.hint
    assert f"auth.token_command ({sys.executable}) exited 22" in message
    assert "curl: (22) 401 invalid_client for secret [redacted] issued [redacted]" in message
    assert token not in message and secret not in message


@pytest.mark.parametrize(
    ("prints", "says"),
    [
        ("", "exited 0 but printed nothing on stdout"),
        ("null", "exited 0 but printed `null`"),
        ("two words", "gave more than a token (2 words); its content is not shown"),
    ],
)
def test_a_command_without_a_token_is_an_error(tmp_path: Path, prints: str, says: str) -> None:
    argv = command(tmp_path, f"print({prints!r})")
    with pytest.raises(CredentialError) as caught:
        CommandToken(argv)()
    assert says in caught.value.message
    assert "two words" not in caught.value.message  # what it printed is never shown


def test_a_missing_or_hanging_command_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CredentialError, match="is not installed or not on PATH"):
        CommandToken([str(tmp_path / "no-such-idp-client")])()
    hangs = [sys.executable, "-c", "import time; time.sleep(60)"]
    with pytest.raises(CredentialError, match=r"did not finish within 0.5s") as caught:
        CommandToken(hangs, timeout_s=0.5)()
    assert "command_timeout_s" in caught.value.hint


def test_redaction_takes_tokens_and_keys_and_keeps_what_helps() -> None:
    token, key = jwt_like(), "Zm9vYmFy" + secrets.token_hex(12).upper() + "xq9"
    text = (
        f"POST https://auth.example.com/oauth/token -> 401 for {token} with {key} "
        "(/var/backups/credit-assessment/backup.dump, credit-assessment-green.internal)"
    )
    assert redact(text) == (
        "POST https://auth.example.com/oauth/token -> 401 for [redacted] with [redacted] "
        "(/var/backups/credit-assessment/backup.dump, credit-assessment-green.internal)"
    )
    assert redact("printed hunter2-was-here", "hunter2-was-here") == "printed [redacted]"


def test_a_fetched_token_is_reused_for_refresh_s_then_fetched_again() -> None:
    fetched: list[str] = []
    now = [0.0]

    def fetch() -> str:
        fetched.append(f"token-{len(fetched)}")
        return fetched[-1]

    source = ReusedToken(fetch, refresh_s=300, clock=lambda: now[0])
    assert source.token() == "token-0"
    now[0] = 299.0
    assert source.token() == "token-0" and len(fetched) == 1
    now[0] = 300.0
    assert source.token() == "token-1"
    assert source.refresh() == "token-2" and source.token() == "token-2"
    assert "token-" not in repr(source)


def test_the_plan_chooses_the_provider() -> None:
    target = FakeTarget()
    plan = load(REPO / "deploy/golive/rehearsal.yaml")
    assert isinstance(credentials.from_plan(plan, target).fetch, ServiceCliToken)
    production = load(REPO / "deploy/golive/production.yaml")
    built = credentials.from_plan(production, target)
    assert isinstance(built.fetch, CommandToken) and built.refresh_s == 300
    assert built.fetch.argv[:2] == ["sh", "-c"] and "client_credentials" in built.fetch.argv[2]
    assert built.fetches == 0  # nothing is fetched until a step asks


def test_the_manual_export_line_follows_the_plan() -> None:
    assert shell_export(None).startswith("export API_TOKEN=$(credit-assessment token")
    assert shell_export(Auth(token_env="IDP_TOKEN")) == 'export API_TOKEN="$IDP_TOKEN"'
    assert shell_export(Auth(token_file=Path("/run/idp token"))) == (
        "export API_TOKEN=$(cat '/run/idp token')"
    )
    assert shell_export(Auth(token_command=["sh", "-c", "idp-cli token | jq -r .t"])) == (
        "export API_TOKEN=$(idp-cli token | jq -r .t)"
    )
    assert shell_export(Auth(token_command=["idp-cli", "token", "--scope", "a b"])) == (
        "export API_TOKEN=$(idp-cli token --scope 'a b')"
    )


def test_after_a_401_the_token_is_fetched_again_once(tmp_path: Path) -> None:
    fetched: list[str] = []

    def fetch() -> str:
        fetched.append(f"token-{len(fetched)}")
        return fetched[-1]

    plan = load(REPO / "deploy/golive/rehearsal.yaml")
    ctx = StepContext(
        plan=plan,
        target=FakeTarget(),
        journal=open_run(tmp_path / "state", "auth-test"),
        control=Control(tmp_path / "state"),
        token_source=ReusedToken(fetch),
    )
    sent: list[str] = []

    def refused_always(token: str) -> int:
        sent.append(token)
        return 401

    assert ctx.authorized(refused_always, lambda status: status == 401) == 401
    assert sent == ["token-0", "token-1"]  # once more, not forever
    assert ctx.authorized(lambda token: token, lambda answer: False) == "token-1"  # reused


# --- a go-live whose checks carry the identity provider's token ------------------------------


@dataclass
class Service:
    """The service as golive's checks see it: it accepts only the identity provider's current
    token, and records every Authorization header it was sent."""

    accepted: str
    seen: list[str] = field(default_factory=list)
    count: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def handler(self) -> type[BaseHTTPRequestHandler]:
        service = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def answer(self, status: int, body: Any, kind: str = "application/json") -> None:
                data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def authorized(self) -> bool:
                given = self.headers.get("Authorization", "")
                with service.lock:
                    service.seen.append(given)
                if given == f"Bearer {service.accepted}":
                    return True
                self.answer(401, {"title": "Unauthorized", "detail": "token not accepted"})
                return False

            def do_GET(self) -> None:
                if self.path in ("/health", "/ready"):
                    self.answer(200, {"status": "ok"})
                elif self.path == "/metrics":
                    text = f"credit_assessments_total {service.count}\n"
                    self.answer(200, text, "text/plain; version=0.0.4")
                elif self.path.startswith("/api/v1/assessment/") and self.authorized():
                    self.answer(200, {"id": self.path.rsplit("/", 1)[1]})

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.authorized():
                    with service.lock:
                        service.count += 1
                    self.answer(201, {"id": str(uuid.uuid4()), "decision": "APPROVED"})

            def log_message(self, format: str, *args: object) -> None:
                return None

        return Handler


@contextlib.contextmanager
def serving(service: Service) -> Iterator[Service]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), service.handler())
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    service.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield service
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@dataclass
class GreenAt(FakeTarget):
    green_url: str = ""

    def slot_url(self, slot: Any) -> str:
        return self.green_url if slot == "green" else super().slot_url(slot)


def go_live(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, auth: dict[str, Any], green: str
) -> tuple[int, Path]:
    """``golive run`` of the smoke and performance steps against ``green``, on the fake target."""
    data = yaml.safe_load((REPO / "deploy/golive/rehearsal.yaml").read_text(encoding="utf-8"))
    data["target"]["state_dir"] = str(tmp_path / "state")
    data["performance"] = {"rate_per_s": 40, "duration_s": 1, "slo": data["performance"]["slo"]}
    data["auth"] = auth
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump(data), encoding="utf-8")
    target = GreenAt(green_url=green)
    monkeypatch.setattr("golive.targets.create", lambda plan: target)
    monkeypatch.setattr(
        "golive.runner.build_steps", lambda plan: [SmokeGreen(), PerformanceGreen()]
    )
    return cli.main(["run", str(plan), "--plain"]), tmp_path / "state"


def everything_written(state: Path, out: str) -> str:
    files = [p.read_text(encoding="utf-8") for p in sorted(state.rglob("*")) if p.is_file()]
    return out + "\n".join(files)


def test_an_expired_token_is_fetched_again_and_never_written_anywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    expired, current = jwt_like(), jwt_like()
    tokens = tmp_path / "idp-tokens.json"
    tokens.write_text(json.dumps([expired, current]), encoding="utf-8")
    fetches = tmp_path / "fetches"
    # The identity provider's stand-in: the first fetch hands out a token that has expired.
    argv = command(
        tmp_path,
        "import json, pathlib, sys\n"
        f"count = pathlib.Path({str(fetches)!r})\n"
        "n = len(count.read_text()) if count.exists() else 0\n"
        "count.write_text('x' * (n + 1))\n"
        f"print(json.loads(pathlib.Path({str(tokens)!r}).read_text())[min(n, 1)])\n",
    )
    with serving(Service(accepted=current)) as service:
        code, state = go_live(tmp_path, monkeypatch, {"token_command": argv}, service.url)
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "the service refused the token (401): fetched a new one" in out
    assert fetches.read_text() == "xx"  # fetched once, again once after the 401, then reused
    assert service.seen.count(f"Bearer {expired}") == 1  # the smoke test's first assessment
    assert service.seen[-1] == f"Bearer {current}" and len(service.seen) > 40  # the load's
    written = everything_written(state, out + err)
    assert expired not in written and current not in written
    assert "smoke-green" in written and "performance-green" in written


def test_a_failing_token_command_fails_the_step_without_showing_a_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    token, secret = jwt_like(), "s3cR3t" + secrets.token_urlsafe(24) + "Q7"
    argv = command(
        tmp_path,
        "import sys\n"
        f"print({token!r})\n"
        f"print('401 invalid_client: client_secret={secret}', file=sys.stderr)\n"
        "sys.exit(6)\n",
    )
    with serving(Service(accepted=token)) as service:
        code, state = go_live(tmp_path, monkeypatch, {"token_command": argv}, service.url)
    out, err = capsys.readouterr()
    assert code == 8
    assert "step 'smoke-green' failed: auth.token_command" in err and "exited 6" in err
    assert "401 invalid_client: client_secret=[redacted]" in err
    assert service.seen == []  # no request went out without a token
    written = everything_written(state, out + err)
    assert token not in written and secret not in written


def test_an_unset_token_variable_fails_the_step_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("GOLIVE_IDP_TOKEN", raising=False)
    code, _ = go_live(tmp_path, monkeypatch, {"token_env": "GOLIVE_IDP_TOKEN"}, "http://x")
    err = capsys.readouterr().err
    assert code == 8
    assert "auth.token_env names GOLIVE_IDP_TOKEN, which is unset or empty" in err


# --- the production plan's command against an identity provider's token endpoint ------------


@dataclass
class IdentityProvider:
    """The OAuth 2.0 token endpoint as the client-credentials grant uses it (RFC 6749 §4.4)."""

    client_id: str
    client_secret: str
    issued: list[str] = field(default_factory=list)

    def handler(self) -> type[BaseHTTPRequestHandler]:
        idp = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                form = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                basic = base64.b64encode(f"{idp.client_id}:{idp.client_secret}".encode()).decode()
                if self.headers.get("Authorization") != f"Basic {basic}":
                    status, body = 401, {"error": "invalid_client"}
                elif form != "grant_type=client_credentials":
                    status, body = 400, {"error": "unsupported_grant_type"}
                else:
                    idp.issued.append(jwt_like())
                    status = 200
                    body = {"access_token": idp.issued[-1], "token_type": "Bearer"}
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                return None

        return Handler


@pytest.mark.skipif(
    not (shutil.which("curl") and shutil.which("jq")), reason="curl and jq are needed"
)
def test_the_production_plan_fetches_a_token_with_client_credentials() -> None:
    plan = load(REPO / "deploy/golive/production.yaml")
    assert plan.auth is not None and plan.auth.token_command is not None
    assert {"GOLIVE_CLIENT_ID", "GOLIVE_CLIENT_SECRET"} <= set(plan.secrets.required)
    assert "JWT_SECRET" not in plan.secrets.required
    idp = IdentityProvider("golive-production", secrets.token_urlsafe(24))
    server = ThreadingHTTPServer(("127.0.0.1", 0), idp.handler())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    environ = {
        "PATH": os.environ["PATH"],
        "GOLIVE_CLIENT_ID": idp.client_id,
        "GOLIVE_CLIENT_SECRET": idp.client_secret,
        "AUTH_TOKEN_URL": f"http://127.0.0.1:{server.server_address[1]}/oauth/token",
    }
    try:
        fetch = CommandToken(plan.auth.token_command, plan.auth.command_timeout_s, environ)
        assert fetch() == idp.issued[-1]
        wrong = CommandToken(
            plan.auth.token_command, 10, {**environ, "GOLIVE_CLIENT_SECRET": "not-the-secret"}
        )
        with pytest.raises(CredentialError) as caught:
            wrong()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    # curl -f fails on the 401; jq, last in the pipe, then prints nothing: no token, said so.
    assert "printed nothing on stdout" in caught.value.message
    assert "401" in caught.value.message  # curl -S still says why on stderr
    assert idp.client_secret not in caught.value.message
