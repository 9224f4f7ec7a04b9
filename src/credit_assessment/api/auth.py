"""Bearer JWT validation: algorithm pinned; signature, ``exp``, ``aud``, ``iss``, ``sub`` checked.

Validated tokens are remembered (by their hash, until they expire) so a client that reuses its
token pays for the signature check once.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import jwt

from credit_assessment.api.keys import KeySet, KeysUnavailable, UnknownKey, http_fetcher
from credit_assessment.api.problems import Problem, unauthorized
from credit_assessment.settings import Settings

_CACHE_SIZE = 4096


@dataclass(frozen=True, slots=True)
class Principal:
    subject: str


class TokenVerifier:
    def __init__(self, settings: Settings) -> None:
        self._algorithm = settings.jwt_algorithm
        self._audience = settings.jwt_audience
        self._issuer = settings.jwt_issuer
        self._leeway = settings.jwt_leeway_s
        self._jwks: KeySet | None = None
        self._key: str | None = None
        if settings.jwt_algorithm == "HS256":
            self._key = settings.signing_secret()
        elif settings.jwt_public_key is not None:
            self._key = settings.jwt_public_key.get_secret_value()
        else:
            self._jwks = KeySet(
                http_fetcher(str(settings.jwt_jwks_url)),
                min_refetch_s=settings.jwt_jwks_min_refetch_s,
                max_age_s=settings.jwt_jwks_max_age_s,
            )
        self._cache: OrderedDict[bytes, tuple[float, Principal]] = OrderedDict()

    def verify(self, authorization: str | None) -> Principal:
        if not authorization:
            raise unauthorized("Missing Authorization header with a Bearer token")
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise unauthorized("Authorization must be 'Bearer <token>'")
        digest = hashlib.blake2b(token.encode(), digest_size=16).digest()
        now = time.time()
        hit = self._cache.get(digest)
        if hit is not None and hit[0] > now:
            return hit[1]
        principal, expires = self._decode(token)
        self._cache[digest] = (expires, principal)
        if len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)
        return principal

    def _decode(self, token: str) -> tuple[Principal, float]:
        try:
            key: Any = self._key
            if self._jwks is not None:
                key = self._jwks.key(token)
            claims = jwt.decode(
                token,
                key,
                algorithms=[self._algorithm],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": ["exp", "sub", "aud", "iss"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise unauthorized("Token has expired") from exc
        except jwt.InvalidAudienceError as exc:
            raise unauthorized("Token audience is not this service") from exc
        except jwt.InvalidIssuerError as exc:
            raise unauthorized("Token issuer is not trusted") from exc
        except jwt.InvalidAlgorithmError as exc:
            raise unauthorized(f"Token algorithm is not {self._algorithm}") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise unauthorized(f"Token lacks the '{exc.claim}' claim") from exc
        except KeysUnavailable as exc:
            raise Problem(
                503, "unavailable", "Service unavailable", "Signing keys unavailable"
            ) from exc
        except UnknownKey as exc:  # the JWKS answered, without the token's key
            raise unauthorized("Token signing key is not known") from exc
        except jwt.InvalidTokenError as exc:
            raise unauthorized("Token is invalid") from exc
        subject = str(claims["sub"])
        if not subject or len(subject) > 255:
            raise unauthorized("Token subject is empty or too long")
        return Principal(subject=subject), float(claims["exp"]) + self._leeway


def mint_token(settings: Settings, subject: str, ttl_s: int) -> str:
    """A development token signed with the HS256 secret (``credit-assessment token``)."""
    if settings.jwt_algorithm != "HS256":
        raise ValueError("tokens can be minted only with JWT_ALGORITHM=HS256")
    now = int(time.time())
    claims = {
        "sub": subject,
        "aud": settings.jwt_audience,
        "iss": settings.jwt_issuer,
        "iat": now,
        "nbf": now,
        "exp": now + ttl_s,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, settings.signing_secret(), algorithm="HS256")
