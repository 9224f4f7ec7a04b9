"""The preflight's signing-keys check: the JWKS answers and publishes the kid of golive's token
(a local JWKS; a closed port for one that does not answer)."""

from __future__ import annotations

import contextlib
import json
import socket
from typing import Any

import jwt
from tests.identity_provider import serving

from golive.steps.preflight import signing_key_published


class Published:
    """A JWKS document of bare ``kid`` entries (all the check reads)."""

    def __init__(self, keys: list[dict[str, Any]]) -> None:
        self.body = json.dumps({"keys": keys}).encode()

    def document(self) -> bytes:
        return self.body


def jwks(keys: list[dict[str, Any]]) -> contextlib.AbstractContextManager[str]:
    return serving(Published(keys))


def token(kid: str) -> str:
    return jwt.encode({"sub": "golive"}, "s" * 32, algorithm="HS256", headers={"kid": kid})


def test_the_kid_golive_is_signed_with_is_published():
    with jwks([{"kid": "key-2026-11"}, {"kid": "key-2026-12"}]) as url:
        check = signing_key_published(token("key-2026-12"), url)
    assert check.passed and check.detail == "the JWKS publishes kid key-2026-12 (2 keys)"


def test_a_kid_the_jwks_does_not_publish_fails_and_never_shows_the_token():
    signed = token("key-2027-01")
    with jwks([{"kid": "key-2026-12"}]) as url:
        check = signing_key_published(signed, url)
    assert not check.passed and "not kid 'key-2027-01'" in check.detail
    assert signed not in check.detail


def test_a_jwks_that_does_not_answer_fails():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    check = signing_key_published(token("k"), f"http://127.0.0.1:{port}/jwks", timeout_s=2)
    assert not check.passed and "does not answer: ConnectError" in check.detail
