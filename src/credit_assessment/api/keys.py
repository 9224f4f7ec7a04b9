"""The identity provider's signing keys (``JWT_JWKS_URL``): cached, honouring ``kid``, rotated
without a restart.

The key set is fetched once and kept. A token whose ``kid`` is in it is verified with that key.
An unknown ``kid`` fetches the set again -- at most once per ``JWT_JWKS_MIN_REFETCH_S`` whatever
the number of requests (one fetch at a time; the others wait for it and use its answer), so a
flood of tokens with random ``kid``s cannot become a flood of fetches. The set is also fetched
again when older than ``JWT_JWKS_MAX_AGE_S``, so a key the provider removed stops being trusted.

A rotation -- the new key published beside the old, tokens signed with the new one, the old key
removed later -- needs no restart: the first token with the new ``kid`` fetches the set that
has it, and tokens signed with the old key verify as long as it is published. A fetch that
fails keeps the set already held; with no usable key the request is answered 503.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import jwt

Fetcher = Callable[[], dict[str, Any]]


class KeysUnavailable(Exception):
    """The key set could not be fetched and no key held answers the token."""


class UnknownKey(Exception):
    """The key set answered, without the token's ``kid``."""


def http_fetcher(url: str, timeout_s: float = 5.0) -> Fetcher:
    def fetch() -> dict[str, Any]:
        request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
        with urllib.request.urlopen(request, timeout=timeout_s) as answer:  # noqa: S310  # nosec B310
            data = json.loads(answer.read())
        if not isinstance(data, dict):
            raise ValueError("the JWKS is not a JSON object")
        return data

    return fetch


class KeySet:
    def __init__(
        self,
        fetch: Fetcher,
        *,
        min_refetch_s: float = 30.0,
        max_age_s: float = 300.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._min_refetch_s = min_refetch_s
        self._max_age_s = max_age_s
        self._now = monotonic
        self._lock = threading.Lock()
        self._keys: dict[str, Any] = {}
        self._fetched_at: float | None = None  # the last fetch that succeeded
        self._attempted_at: float | None = None  # the last fetch tried (rate limit)
        self.fetches = 0  # fetches attempted (a metric and a test's count)

    def key(self, token: str) -> Any:
        """The key that verifies ``token`` (by its ``kid``)."""
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.InvalidTokenError as exc:
            raise UnknownKey("the token has no readable header") from exc
        if not isinstance(kid, str) or not kid:
            if len(self._keys) == 1 and not self._stale():  # a provider with a single key
                return next(iter(self._keys.values()))
            raise UnknownKey("the token names no kid")
        known = self._keys.get(kid)
        if known is not None and not self._stale():
            return known
        return self._refetched(kid)

    def _stale(self) -> bool:
        return self._fetched_at is None or self._now() - self._fetched_at >= self._max_age_s

    def _refetched(self, kid: str) -> Any:
        with self._lock:  # one fetch at a time; the others find its answer
            if self._stale() or kid not in self._keys:
                recent = (
                    self._attempted_at is not None
                    and self._now() - self._attempted_at < self._min_refetch_s
                )
                if not recent:
                    self._refresh()
            known = self._keys.get(kid)
            fetched = self._fetched_at is not None
        if known is not None:
            return known
        if not fetched:
            raise KeysUnavailable("the signing keys could not be fetched")
        raise UnknownKey(f"no published key has kid {kid[:64]!r}")

    def _refresh(self) -> None:
        self.fetches += 1
        self._attempted_at = self._now()
        try:
            document = self._fetch()
            keys = {
                str(k.key_id): k.key
                for k in jwt.PyJWKSet.from_dict(document).keys
                if k.key_id and k.public_key_use in (None, "sig")
            }
        except Exception:  # noqa: BLE001 - keep the keys held; the next attempt may succeed
            return
        self._keys = keys
        self._fetched_at = self._attempted_at
