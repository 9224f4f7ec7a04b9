"""Signing keys rotated without a restart: the JWKS cached by ``kid``, an unknown ``kid``
fetching it again at most once per interval, a rotation under a steady load with no 401, and a
flood of random ``kid``s that costs one fetch. The identity provider is a local HTTP server
whose key set the test changes; every fetch is counted."""

from __future__ import annotations

import contextlib
import json
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from credit_assessment.api.auth import TokenVerifier
from credit_assessment.api.keys import KeySet, KeysUnavailable, UnknownKey
from credit_assessment.api.problems import Problem
from credit_assessment.settings import load_settings

AUDIENCE = ISSUER = "credit-assessment"


@dataclass
class SigningKey:
    kid: str
    private: Any = field(repr=False)

    @classmethod
    def new(cls, kid: str) -> SigningKey:
        return cls(kid, rsa.generate_private_key(public_exponent=65537, key_size=2048))

    def jwk(self) -> dict[str, Any]:
        data = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private.public_key()))
        return {**data, "kid": self.kid, "use": "sig", "alg": "RS256"}

    def token(self, subject: str = "client-app", kid: str | None = None) -> str:
        now = int(time.time())
        claims = {
            "sub": subject,
            "aud": AUDIENCE,
            "iss": ISSUER,
            "iat": now,
            "exp": now + 300,
            "jti": secrets.token_hex(8),  # every token new: no verification is a cache hit
        }
        return jwt.encode(claims, self.private, algorithm="RS256", headers={"kid": kid or self.kid})


class Provider:
    """The identity provider's JWKS endpoint: the keys it publishes now, and its fetch count."""

    def __init__(self) -> None:
        self.published: list[SigningKey] = []
        self.fetches = 0
        self.lock = threading.Lock()

    def document(self) -> bytes:
        with self.lock:
            self.fetches += 1
            return json.dumps({"keys": [k.jwk() for k in self.published]}).encode()


@contextlib.contextmanager
def serving(provider: Provider) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = provider.document()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def verifier(url: str, min_refetch_s: float) -> TokenVerifier:
    settings = load_settings(
        jwt_algorithm="RS256",
        jwt_jwks_url=url,
        jwt_audience=AUDIENCE,
        jwt_issuer=ISSUER,
        jwt_jwks_min_refetch_s=min_refetch_s,
        jwt_jwks_max_age_s=3600,
    )
    return TokenVerifier(settings)


def status(check: TokenVerifier, token: str) -> int:
    try:
        check.verify(f"Bearer {token}")
    except Problem as problem:
        return problem.status
    return 200


def steady(check: TokenVerifier, sign: Any, rate_per_s: float, duration_s: float) -> list[int]:
    """``rate_per_s`` verifications a second for ``duration_s``, each of a fresh token."""
    answers: list[int] = []
    interval = 1 / rate_per_s
    start = time.monotonic()
    for n in range(int(rate_per_s * duration_s)):
        delay = start + n * interval - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        answers.append(status(check, sign()))
    return answers


def test_a_rotation_under_a_steady_load_causes_no_401():
    old, new = SigningKey.new("key-2026-11"), SigningKey.new("key-2026-12")
    provider = Provider()
    provider.published = [old]
    with serving(provider) as url:
        check = verifier(url, min_refetch_s=0.5)
        answers = steady(check, old.token, rate_per_s=200, duration_s=1.0)
        provider.published = [old, new]  # 1. the new key published beside the old
        answers += steady(check, old.token, rate_per_s=200, duration_s=0.5)
        answers += steady(check, new.token, rate_per_s=200, duration_s=1.0)  # 2. signing with it
        provider.published = [new]  # 3. the old key removed
        answers += steady(check, new.token, rate_per_s=200, duration_s=0.5)
    assert len(answers) == 600
    assert answers.count(401) == 0 and set(answers) == {200}
    # The first fetch, then one for the first token of the new kid.
    assert provider.fetches == 2


def test_a_flood_of_random_kids_costs_at_most_one_fetch_per_interval():
    current = SigningKey.new("key-2026-12")
    provider = Provider()
    provider.published = [current]
    with serving(provider) as url:
        check = verifier(url, min_refetch_s=30)
        assert status(check, current.token()) == 200
        flood = [current.token(kid=secrets.token_hex(8)) for _ in range(1000)]
        answers: list[int] = []
        lock = threading.Lock()

        def send(part: list[str]) -> None:
            seen = [status(check, token) for token in part]
            with lock:
                answers.extend(seen)

        threads = [threading.Thread(target=send, args=(flood[i::8],)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert status(check, current.token()) == 200  # the real key still verifies
    assert len(answers) == 1000 and set(answers) == {401}
    assert provider.fetches <= 2  # the first fetch, and one for the whole flood


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_removed_key_stops_verifying_once_the_set_is_older_than_its_max_age():
    old, new = SigningKey.new("old"), SigningKey.new("new")
    published = {"keys": [old.jwk(), new.jwk()]}
    clock = Clock()
    keys = KeySet(lambda: published, min_refetch_s=5, max_age_s=60, monotonic=clock)
    assert keys.key(old.token()) is not None
    published = {"keys": [new.jwk()]}
    clock.now = 59
    assert keys.key(old.token()) is not None  # still within the set's max age
    clock.now = 61
    with pytest.raises(UnknownKey):
        keys.key(old.token())
    assert keys.key(new.token()) is not None and keys.fetches == 2


def test_a_provider_that_is_down_keeps_the_keys_held_and_is_not_hammered():
    key = SigningKey.new("k")
    answers: list[Any] = [{"keys": [key.jwk()]}]

    def fetch() -> dict[str, Any]:
        answer = answers[-1]
        if isinstance(answer, Exception):
            raise answer
        return answer

    clock = Clock()
    keys = KeySet(fetch, min_refetch_s=10, max_age_s=60, monotonic=clock)
    assert keys.key(key.token()) is not None
    answers.append(ConnectionRefusedError("down"))
    clock.now = 61  # stale: fetched again, fails, the key held still verifies
    assert keys.key(key.token()) is not None
    for _ in range(100):
        with pytest.raises(UnknownKey):
            keys.key(key.token(kid="other"))
    assert keys.fetches == 2


def test_no_key_ever_fetched_is_a_503_not_a_flood():
    def fetch() -> dict[str, Any]:
        raise ConnectionRefusedError("down")

    clock = Clock()
    keys = KeySet(fetch, min_refetch_s=10, monotonic=clock)
    key = SigningKey.new("k")
    for _ in range(50):
        with pytest.raises(KeysUnavailable):
            keys.key(key.token())
    assert keys.fetches == 1
