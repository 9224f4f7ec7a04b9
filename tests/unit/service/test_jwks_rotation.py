"""Signing keys rotated without a restart, the key set's own rules: a removed key stops verifying
once the set is older than its max age, a provider that is down keeps the keys held and is not
hammered, and no key ever fetched is a 503. The rotation under load and the flood of random
``kid``s run over HTTP through a running service in
tests/integration/service/test_jwks_rotation_http.py."""

from __future__ import annotations

from typing import Any

import pytest

from credit_assessment.api.keys import KeySet, KeysUnavailable, UnknownKey
from tests.identity_provider import SigningKey


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
