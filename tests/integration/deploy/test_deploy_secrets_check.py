"""`golive secrets check` against a real Vault API (OpenBao dev server on 127.0.0.1) and
the real rendered manifests. Values are written with a sentinel that must never show."""

from __future__ import annotations

from pathlib import Path

import hvac
import pytest
import yaml

from golive import cli, secrets
from golive.errors import MissingSecretsError, VaultAuthError, VaultUnreachableError

SENTINEL = "s3ntinel-value-never-printed"
MOUNT = "secret"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def rendered_files(rendered, tmp_path_factory) -> list[Path]:
    """The production, migration, infra and golive-production overlays as rendered YAML files."""
    folder = tmp_path_factory.mktemp("rendered")
    paths = []
    for overlay in ("production", "migration", "infra", "golive-production"):
        path = folder / f"{overlay}.yaml"
        path.write_text(yaml.safe_dump_all([m.doc for m in rendered[overlay]]), encoding="utf-8")
        paths.append(path)
    return paths


PREFIX = "credit-assessment/production"
FIELDS = {
    "postgres-app": ("username", "password"),
    "backup-object-store": ("access-key-id", "secret-access-key"),
    "redis": ("password",),
}
KEYS = (
    "database-url",
    "jwt-public-key",
    "bureau-api-key",
    "legacy-api-token",
    "redis-url",
    "postgres-app",
    "backup-object-store",
    "redis",
    "golive-client-id",
    "golive-client-secret",
    "golive-database-url",
    "golive-oncall-url",
    "golive-status-page-url",
)


@pytest.fixture
def vault(bao) -> hvac.Client:
    """The dev server holding exactly the paths our ExternalSecrets read, freshly written."""
    client = hvac.Client(url=bao.addr, token=bao.token, timeout=5)
    for key in KEYS:
        client.secrets.kv.v2.delete_metadata_and_all_versions(
            path=f"{PREFIX}/{key}", mount_point=MOUNT
        )
        client.secrets.kv.v2.create_or_update_secret(
            path=f"{PREFIX}/{key}",
            secret={f: f"{SENTINEL}-{f}" for f in FIELDS.get(key, ("value",))},
            mount_point=MOUNT,
        )
    return client


def run(addr, files, capsys, *extra, token, monkeypatch):
    monkeypatch.setenv("VAULT_TOKEN", token)
    monkeypatch.delenv("VAULT_TOKEN_FILE", raising=False)
    argv = ["secrets", "check", "--vault-addr", addr, *extra]
    for path in files:
        argv += ["--manifests", str(path)]
    code = cli.main(argv)
    out, err = capsys.readouterr()
    assert SENTINEL not in out + err
    assert token not in out + err
    return code, out, err


def test_all_keys_present_passes(vault, bao, rendered_files, capsys, monkeypatch):
    code, out, err = run(
        bao.addr,
        rendered_files,
        capsys,
        "--prefix",
        "credit-assessment/production",
        token=bao.token,
        monkeypatch=monkeypatch,
    )
    assert code == 0, err
    assert "ok       secret/credit-assessment/production/database-url version 1" in out
    assert "ok       secret/credit-assessment/production/golive-database-url version 1" in out
    assert out.count("  ok ") == len(KEYS) == 13
    assert "secrets check passed" in out


def test_a_missing_key_fails_naming_its_path(vault, bao, rendered_files, capsys, monkeypatch):
    vault.secrets.kv.v2.delete_metadata_and_all_versions(
        path="credit-assessment/production/bureau-api-key", mount_point=MOUNT
    )
    code, out, err = run(bao.addr, rendered_files, capsys, token=bao.token, monkeypatch=monkeypatch)
    assert code == MissingSecretsError.exit_code == 5
    assert "MISSING  secret/credit-assessment/production/bureau-api-key" in out
    assert "error: 1 required secret(s) missing in Vault: " in err
    assert "secret/credit-assessment/production/bureau-api-key" in err
    assert "hint: " in err


def test_a_deleted_current_version_counts_as_missing(
    vault, bao, rendered_files, capsys, monkeypatch
):
    vault.secrets.kv.v2.delete_latest_version_of_secret(
        path="credit-assessment/production/redis-url", mount_point=MOUNT
    )
    code, out, _ = run(bao.addr, rendered_files, capsys, token=bao.token, monkeypatch=monkeypatch)
    assert code == 5
    assert "MISSING  secret/credit-assessment/production/redis-url" in out


def test_a_token_without_permission_is_an_auth_error(
    vault, bao, rendered_files, capsys, monkeypatch
):
    weak = vault.auth.token.create(policies=["default"], ttl="5m")["auth"]["client_token"]
    code, _, err = run(bao.addr, rendered_files, capsys, token=weak, monkeypatch=monkeypatch)
    assert code == VaultAuthError.exit_code == 4
    assert "permission denied" in err


def test_a_path_outside_the_prefix_is_a_wiring_error(
    vault, bao, rendered_files, capsys, monkeypatch
):
    code, _, err = run(
        bao.addr,
        rendered_files,
        capsys,
        "--prefix",
        "credit-assessment/staging",
        token=bao.token,
        monkeypatch=monkeypatch,
    )
    assert code == 3
    assert "outside --prefix credit-assessment/staging" in err


def test_vault_unreachable_is_a_clear_error(rendered_files, capsys, monkeypatch, unused_port):
    addr = f"http://127.0.0.1:{unused_port}"
    code, _, err = run(addr, rendered_files, capsys, token="t-unused", monkeypatch=monkeypatch)
    assert code == VaultUnreachableError.exit_code == 4
    assert f"Vault at {addr} is unreachable" in err
    assert "hint: check VAULT_ADDR" in err


def test_token_from_file_and_no_token(bao, vault, rendered_files, tmp_path, monkeypatch):
    token_file = tmp_path / "token"
    token_file.write_text(bao.token + "\n")
    lines: list[str] = []
    secrets.check(
        vault_addr=bao.addr,
        manifests=rendered_files,
        environ={"VAULT_TOKEN_FILE": str(token_file)},
        emit=lines.append,
    )
    assert lines[-1] == "secrets check passed"
    with pytest.raises(secrets.UsageError, match="no Vault token"):
        secrets.check(vault_addr=bao.addr, manifests=rendered_files, environ={}, emit=lines.append)
    with pytest.raises(secrets.UsageError, match="no Vault address"):
        secrets.check(vault_addr=None, manifests=rendered_files, environ={"VAULT_TOKEN": "x"})


def test_the_check_renders_overlays_itself(vault, bao, kubectl, capsys, monkeypatch):
    """Default manifests: the repository's production, migration, infra and golive overlays."""
    monkeypatch.chdir(Path(__file__).resolve().parents[3])
    monkeypatch.setenv("VAULT_TOKEN", bao.token)
    assert cli.main(["secrets", "check", "--vault-addr", bao.addr]) == 0
    assert "secrets check passed" in capsys.readouterr().out
