"""The wiring half of `golive secrets check`: pure, over in-memory objects."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from golive.errors import GoLiveError, MissingSecretsError, SecretWiringError, UsageError
from golive.manifests import Manifest
from golive.secrets import read_token, wire

KEYS = ["database-url", "jwt-public-key", "bureau-api-key", "legacy-api-token", "redis-url"]
FILES = {
    "DATABASE_URL": "database-url",
    "JWT_PUBLIC_KEY": "jwt-public-key",
    "BUREAU_API_KEY": "bureau-api-key",
    "LEGACY_API_TOKEN": "legacy-api-token",
    "REDIS_URL": "redis-url",
}


def store(version: str = "v2") -> dict[str, Any]:
    return {
        "apiVersion": "external-secrets.io/v1",
        "kind": "SecretStore",
        "metadata": {"name": "vault"},
        "spec": {"provider": {"vault": {"server": "https://v", "path": "kv", "version": version}}},
    }


def external_secret(keys: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": "external-secrets.io/v1",
        "kind": "ExternalSecret",
        "metadata": {"name": "app"},
        "spec": {
            "secretStoreRef": {"name": "vault", "kind": "SecretStore"},
            "target": {"name": "app-secrets"},
            "data": [
                {"secretKey": k, "remoteRef": {"key": f"app/prod/{k}", "property": "value"}}
                for k in keys
            ],
        },
    }


def deployment(env: dict[str, str], items: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "credit-assessment",
                            "env": [{"name": k, "value": v} for k, v in env.items()],
                            "volumeMounts": [{"name": "s", "mountPath": "/run/s"}],
                        }
                    ],
                    "volumes": [
                        {
                            "name": "s",
                            "secret": {
                                "secretName": "app-secrets",
                                "items": [{"key": k, "path": k} for k in items],
                            },
                        }
                    ],
                }
            }
        },
    }


def good_env() -> dict[str, str]:
    return {"JWT_ALGORITHM": "RS256"} | {f"{n}_FILE": f"/run/s/{k}" for n, k in FILES.items()}


def objects(*docs: dict[str, Any]) -> list[Manifest]:
    return [Manifest(copy.deepcopy(d), "test.yaml") for d in docs]


def test_consistent_wiring_has_no_problems_and_lists_vault_paths():
    wiring = wire(objects(store(), external_secret(KEYS), deployment(good_env(), KEYS)), None, None)
    assert wiring.problems == []
    assert [str(p) for p in wiring.vault_paths] == sorted(f"kv/app/prod/{k}" for k in KEYS)
    assert wiring.unused == []


def test_mount_option_overrides_the_store_and_prefix_is_enforced():
    docs = objects(store(), external_secret(KEYS), deployment(good_env(), KEYS))
    wiring = wire(docs, "other", "app/staging")
    assert {p.mount for p in wiring.vault_paths} == {"other"}
    assert len(wiring.problems) == len(KEYS)
    assert "outside --prefix app/staging" in wiring.problems[0]


def test_a_mounted_key_no_external_secret_writes_is_named():
    written = [k for k in KEYS if k != "redis-url"]
    wiring = wire(
        objects(store(), external_secret(written), deployment(good_env(), KEYS)), None, None
    )
    assert any("key 'redis-url' of Secret app-secrets" in p for p in wiring.problems)


def test_a_file_variable_pointing_nowhere_is_named():
    env = good_env() | {"REDIS_URL_FILE": "/run/elsewhere/redis-url"}
    wiring = wire(objects(store(), external_secret(KEYS), deployment(env, KEYS)), None, None)
    assert any(
        "REDIS_URL_FILE=/run/elsewhere/redis-url names no mounted" in p for p in wiring.problems
    )
    assert any("does not get REDIS_URL" in p for p in wiring.problems)


def test_the_jwt_secret_needed_follows_the_algorithm():
    env = good_env() | {"JWT_ALGORITHM": "HS256"}
    wiring = wire(objects(store(), external_secret(KEYS), deployment(env, KEYS)), None, None)
    assert wiring.problems == [
        "Deployment/web container credit-assessment does not get JWT_SECRET: "
        "set JWT_SECRET_FILE to a mounted Secret file"
    ]


def test_a_secret_nobody_writes_is_named():
    wiring = wire(objects(store(), deployment(good_env(), KEYS)), None, None)
    assert any(
        "uses Secret app-secrets, which no ExternalSecret writes" in p for p in wiring.problems
    )


def test_unused_keys_are_reported_not_failed():
    wiring = wire(
        objects(store(), external_secret([*KEYS, "spare"]), deployment(good_env(), KEYS)),
        None,
        None,
    )
    assert wiring.problems == []
    assert wiring.unused == ["app-secrets/spare"]


def test_kv_version_one_is_refused():
    with pytest.raises(UsageError, match="KV v1"):
        wire(objects(store("v1"), external_secret(KEYS)), None, None)


def test_token_sources():
    assert read_token({"VAULT_TOKEN": " t1 "}) == "t1"
    with pytest.raises(UsageError) as caught:
        read_token({"VAULT_TOKEN_FILE": "/nonexistent/token"})
    assert caught.value.exit_code == 2


def test_error_tree():
    missing = MissingSecretsError(["kv/a", "kv/b"])
    assert isinstance(missing, GoLiveError)
    assert missing.exit_code == 5
    assert "kv/a, kv/b" in str(missing)
    assert missing.hint
    wiring = SecretWiringError(["x", "y"])
    assert wiring.exit_code == 3
    assert "x\n  y" in wiring.message
