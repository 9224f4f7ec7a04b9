"""Where golive gets the bearer token of its own requests: smoke, performance, verify-monitoring.

A ``TokenSource`` hands out a token (``token()``) and fetches a new one on demand
(``refresh()``: after a 401). The plan's ``auth`` section chooses where it comes from:

* ``token_env: NAME`` — the variable's value (read at every fetch, so a renewed one is seen);
* ``token_file: PATH`` — the file's content, stripped (a mounted Secret, a file a sidecar renews);
* ``token_command: [argv...]`` — what the command prints on stdout, run without a shell unless
  the operator writes ``sh -c``: e.g. a client-credentials call to the identity provider;
* no ``auth`` (the local target only; ``golive.plan`` refuses it on Kubernetes) — minted with
  the service's own CLI (``golive.service``), which signs with the slots' ``JWT_SECRET``.

A fetched token is reused for ``auth.refresh_s`` seconds and then fetched again: a go-live lasts
days, tokens expire. It never reaches the journal, the report, a log or an error: a failing
command's error shows its exit code and the tail of its stderr with anything that looks like a
token redacted (``redact``), never its stdout.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from golive.errors import CredentialError
from golive.plan import Auth, Plan
from golive.service import service_token

DEFAULT_REFRESH_S = 300  # the service CLI's tokens, when the plan has no auth section
STDERR_TAIL = 400
REDACTED = "[redacted]"
# A JWT (header.payload.signature; the header is base64 of '{"...'), or any three long
# base64url segments joined by dots.
_JWT = re.compile(
    r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"
    r"|[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}"
)
# A long run of base64 characters (opaque tokens, client secrets, basic-auth pairs).
_RUN = re.compile(r"[A-Za-z0-9+/_-]{24,}={0,2}")


class TokenSource(Protocol):
    """Bearer tokens for golive's own requests to the service."""

    def token(self) -> str:
        """A token: the one fetched last while it is fresh, else a new one."""
        ...

    def refresh(self) -> str:
        """A newly fetched token (after a 401: the one held was refused)."""
        ...


class ServiceCommandLine(Protocol):
    """What minting a token with the service's CLI needs of a target."""

    def service_env(self) -> dict[str, str]: ...

    def service_cli(self) -> str: ...


def redact(text: str, *known: str) -> str:
    """``text`` with every JWT-like string, long base64 run and ``known`` secret replaced."""
    for secret in known:
        for line in secret.splitlines():
            if len(line.strip()) >= 6:
                text = text.replace(line.strip(), REDACTED)
    text = _JWT.sub(REDACTED, text)
    return _RUN.sub(lambda m: REDACTED if _looks_random(m.group()) else m.group(), text)


def _looks_random(run: str) -> bool:
    """Letters of both cases and digits: a key or a token, not a path or a word."""
    return (
        any(c.isdigit() for c in run)
        and any(c.islower() for c in run)
        and any(c.isupper() for c in run)
    )


# --- providers: each fetches one token -------------------------------------------------------


class EnvToken:
    """``auth.token_env``: the variable's value."""

    def __init__(self, name: str, environ: Mapping[str, str] = os.environ) -> None:
        self.name = name
        self.environ = environ

    def __call__(self) -> str:
        token = self.environ.get(self.name, "").strip()
        if not token:
            raise CredentialError(
                f"auth.token_env names {self.name}, which is unset or empty: no bearer token "
                "for golive's requests",
                hint=f"export {self.name} with a token the service accepts (from the identity "
                "provider), or let auth.token_command fetch one; then `golive run PLAN --resume`",
            )
        return _single(token, f"${self.name}")


class FileToken:
    """``auth.token_file``: the file's content, stripped."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self) -> str:
        try:
            token = self.path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or type(exc).__name__
            raise CredentialError(
                f"auth.token_file {self.path} cannot be read: {reason}",
                hint="write or mount the token there (a Kubernetes Secret, a file a sidecar "
                "renews), or point auth.token_file at it; then `golive run PLAN --resume`",
            ) from exc
        if not token:
            raise CredentialError(
                f"auth.token_file {self.path} is empty: no bearer token for golive's requests",
                hint="whatever writes the file has not written a token yet: check it, then "
                "`golive run PLAN --resume`",
            )
        return _single(token, str(self.path))


class CommandToken:
    """``auth.token_command``: the command's stdout, stripped; no shell unless it is ``sh -c``."""

    def __init__(
        self,
        argv: Sequence[str],
        timeout_s: float = 30,
        environ: Mapping[str, str] = os.environ,
    ) -> None:
        self.argv = list(argv)
        self.timeout_s = timeout_s
        self.environ = environ

    @property
    def _named(self) -> str:
        return f"auth.token_command ({self.argv[0]})"

    def __call__(self) -> str:
        try:
            done = subprocess.run(  # noqa: S603 - the operator's argv, no shell of ours
                self.argv,
                env=dict(self.environ),
                capture_output=True,
                text=True,
                timeout=self.timeout_s,
                check=False,
            )
        except FileNotFoundError as exc:
            raise CredentialError(
                f"{self._named}: {self.argv[0]} is not installed or not on PATH",
                hint="install it or give its full path in the plan's auth.token_command",
            ) from exc
        except subprocess.TimeoutExpired as exc:
            raise CredentialError(
                f"{self._named} did not finish within {self.timeout_s:g}s",
                hint="check that the identity provider answers (auth.command_timeout_s sets "
                "the limit); then `golive run PLAN --resume`",
            ) from exc
        except OSError as exc:
            raise CredentialError(
                f"{self._named} could not start: {exc.strerror or type(exc).__name__}",
                hint="check the command's path and permissions in the plan's auth.token_command",
            ) from exc
        if done.returncode != 0:
            raise CredentialError(
                f"{self._named} exited {done.returncode}: {_tail(done.stderr, done.stdout)}",
                hint="run the command by hand to see why (its stdout is never shown: it may "
                "hold a token); check the client credentials and the identity provider's URL",
            )
        token = done.stdout.strip()
        if token in ("", "null"):  # jq -r prints null for a missing field
            said = "printed `null`" if token else "printed nothing on stdout"
            raise CredentialError(
                f"{self._named} exited 0 but {said}: no token (stderr: "
                f"{_tail(done.stderr, done.stdout)})",
                hint="the command must print the token alone on stdout; with curl and jq, "
                "`jq -r .access_token` prints null when the answer carries no access_token",
            )
        return _single(token, self._named)


class ServiceCliToken:
    """No ``auth``: minted with the service's own CLI (the local target's slots verify it)."""

    def __init__(self, service: ServiceCommandLine, ttl_s: int = 900) -> None:
        self.service = service
        self.ttl_s = ttl_s

    def __call__(self) -> str:
        return service_token(
            self.service.service_env(), self.service.service_cli(), "golive", self.ttl_s
        )


def _tail(stderr: str, stdout: str) -> str:
    text = redact(" ".join(stderr.split()), stdout)
    if not text:
        return "nothing on stderr"
    return text if len(text) <= STDERR_TAIL else "…" + text[-STDERR_TAIL:]


def _single(token: str, where: str) -> str:
    """A bearer token is one line without spaces: anything else would corrupt the header."""
    if any(c.isspace() for c in token):
        raise CredentialError(
            f"{where} gave more than a token ({len(token.split())} words); its content is not "
            "shown, it may hold a secret",
            hint="the source must hold (or print) the bearer token alone",
        )
    return token


# --- reuse ------------------------------------------------------------------------------------


class ReusedToken:
    """A token fetched once and reused for ``refresh_s`` seconds; ``refresh`` fetches anew."""

    def __init__(
        self,
        fetch: Callable[[], str],
        refresh_s: float = DEFAULT_REFRESH_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.fetch = fetch
        self.refresh_s = refresh_s
        self.clock = clock
        self.fetches = 0
        self._token: str | None = None
        self._fetched_at = 0.0

    def token(self) -> str:
        if self._token is None or self.clock() - self._fetched_at >= self.refresh_s:
            return self.refresh()
        return self._token

    def refresh(self) -> str:
        token = self.fetch()
        self._token, self._fetched_at = token, self.clock()
        self.fetches += 1
        return token

    def __repr__(self) -> str:  # never the token
        return f"ReusedToken({type(self.fetch).__name__}, refresh_s={self.refresh_s:g})"


def fetcher(
    auth: Auth | None, service: ServiceCommandLine, environ: Mapping[str, str]
) -> Callable[[], str]:
    """The provider the plan's ``auth`` names (none: the service's CLI, tokens that outlive
    their reuse)."""
    if auth is None:
        return ServiceCliToken(service, ttl_s=3 * DEFAULT_REFRESH_S)
    if auth.token_env is not None:
        return EnvToken(auth.token_env, environ)
    if auth.token_file is not None:
        return FileToken(auth.token_file)
    assert auth.token_command is not None  # the plan holds exactly one of the three
    return CommandToken(auth.token_command, auth.command_timeout_s, environ)


def from_plan(
    plan: Plan,
    service: ServiceCommandLine,
    environ: Mapping[str, str] = os.environ,
    clock: Callable[[], float] = time.monotonic,
) -> ReusedToken:
    """The token source of a go-live, built once; nothing is fetched until a step asks."""
    refresh_s = plan.auth.refresh_s if plan.auth is not None else DEFAULT_REFRESH_S
    return ReusedToken(fetcher(plan.auth, service, environ), refresh_s, clock)


def shell_export(auth: Auth | None, variable: str = "API_TOKEN") -> str:
    """The line an operator runs to put the plan's token in ``variable`` (runbook, manual)."""
    if auth is None:
        return f"export {variable}=$(credit-assessment token --subject smoke --ttl 900)"
    if auth.token_env is not None:
        return f'export {variable}="${auth.token_env}"'
    if auth.token_file is not None:
        return f"export {variable}=$(cat {_quote(str(auth.token_file))})"
    argv = auth.token_command
    assert argv is not None
    if len(argv) == 3 and argv[:2] in (["sh", "-c"], ["bash", "-c"]):
        return f"export {variable}=$({argv[2]})"  # the script itself, in the operator's shell
    return f"export {variable}=$({' '.join(_quote(a) for a in argv)})"


def _quote(word: str) -> str:
    if re.fullmatch(r"[A-Za-z0-9_./:=@%+-]+", word):
        return word
    return "'" + word.replace("'", "'\"'\"'") + "'"
