"""An identity provider for the tests: RS256 signing keys, and its JWKS endpoint as a loopback
HTTP server whose key set the test changes and whose every fetch is counted."""

from __future__ import annotations

import contextlib
import json
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

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


class JwksDocument(Protocol):
    def document(self) -> bytes: ...


@contextlib.contextmanager
def serving(provider: JwksDocument) -> Iterator[str]:
    """The provider's JWKS (any ``document()``) on a free loopback port; yields its URL."""

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
