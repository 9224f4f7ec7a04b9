"""`golive secrets check`: are the production secrets in place, without ever reading one?

Two questions, both answered before a deploy:

1. Wiring (no network): in the rendered manifests, is every Secret key a workload uses —
   volume items, ``secretKeyRef``, ``<NAME>_FILE`` paths, the database cluster's credential
   references — written by an ExternalSecret? Does each service container get every secret
   the service needs (``DATABASE_URL``, ``REDIS_URL``, ``BUREAU_API_KEY``,
   ``LEGACY_API_TOKEN`` and ``JWT_SECRET`` or ``JWT_PUBLIC_KEY`` by ``JWT_ALGORITHM``)?
2. Vault: does every path those ExternalSecrets read exist, with a live current version?
   Only KV v2 METADATA is read (``<mount>/metadata/<path>``): no secret value is ever
   fetched, so none can be printed. The field inside an entry (``property``) cannot be
   verified without reading the value, and is not.

The Vault token comes from VAULT_TOKEN or the file named by VAULT_TOKEN_FILE; it never
appears in output or in errors.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from golive.errors import (
    MissingSecretsError,
    SecretWiringError,
    UsageError,
    VaultAuthError,
    VaultError,
    VaultUnreachableError,
)
from golive.manifests import Manifest, containers, pod_spec, render

DEFAULT_MANIFESTS = (
    Path("deploy/k8s/production"),
    Path("deploy/k8s/migration"),
    Path("deploy/k8s/infra"),
    Path("deploy/k8s/golive-production"),
)
DEFAULT_MOUNT = "secret"
VAULT_TIMEOUT_S = 5.0
ALL_KEYS = None  # an ExternalSecret with dataFrom writes keys we cannot list

# What each container of ours needs, by container name (golive never imports the service,
# so the service's secret settings are restated here; the JWT one depends on JWT_ALGORITHM).
SERVICE_SECRETS: Mapping[str, tuple[str, ...]] = {
    "credit-assessment": ("DATABASE_URL", "REDIS_URL", "BUREAU_API_KEY", "LEGACY_API_TOKEN"),
    "db-migration": ("DATABASE_URL",),
}


@dataclass(frozen=True)
class VaultPath:
    """One KV v2 entry an ExternalSecret reads."""

    mount: str
    path: str
    readers: tuple[str, ...]  # "ExternalSecret/name:secretKey"

    def __str__(self) -> str:
        return f"{self.mount}/{self.path}"


@dataclass
class Wiring:
    produced: dict[str, set[str] | None] = field(default_factory=dict)
    vault_paths: list[VaultPath] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    consumed: int = 0
    unused: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- wiring


def _produced_keys(spec: Mapping[str, Any]) -> set[str] | None:
    if spec.get("dataFrom"):
        return ALL_KEYS
    keys = {str(d["secretKey"]) for d in spec.get("data") or []}
    template = (spec.get("target") or {}).get("template") or {}
    if template.get("data"):
        templated = {str(k) for k in template["data"]}
        return keys | templated if template.get("mergePolicy") == "Merge" else templated
    return keys


def _stores(manifests: Iterable[Manifest], mount: str | None) -> dict[str, str]:
    stores = {}
    for m in manifests:
        if m.kind in ("SecretStore", "ClusterSecretStore"):
            vault = (m.doc["spec"].get("provider") or {}).get("vault")
            if vault is None:
                continue
            if vault.get("version", "v2") != "v2":
                raise UsageError(f"{m.ref} uses KV {vault['version']}; the check needs KV v2")
            stores[m.name] = mount or str(vault.get("path", DEFAULT_MOUNT))
    return stores


def external_secrets(
    manifests: Sequence[Manifest], mount: str | None, prefix: str | None, wiring: Wiring
) -> None:
    stores = _stores(manifests, mount)
    readers: dict[tuple[str, str], list[str]] = {}
    for m in manifests:
        if m.kind != "ExternalSecret":
            continue
        spec = m.doc["spec"]
        target = (spec.get("target") or {}).get("name") or m.name
        wiring.produced[target] = _produced_keys(spec)
        store = (spec.get("secretStoreRef") or {}).get("name", "")
        store_mount = stores.get(store, mount or DEFAULT_MOUNT)
        entries = [(d["remoteRef"]["key"], d["secretKey"]) for d in spec.get("data") or []]
        entries += [((d.get("extract") or {}).get("key"), "*") for d in spec.get("dataFrom") or []]
        for key, secret_key in entries:
            if not key:
                continue
            path = str(key).strip("/")
            if prefix and not path.startswith(prefix.strip("/") + "/"):
                wiring.problems.append(
                    f"{m.ref} reads Vault path {store_mount}/{path}, outside --prefix {prefix}"
                )
            readers.setdefault((store_mount, path), []).append(f"{m.ref}:{secret_key}")
    wiring.vault_paths = [VaultPath(mt, p, tuple(r)) for (mt, p), r in sorted(readers.items())]


def _need(wiring: Wiring, who: str, secret: str, key: str | None) -> None:
    wiring.consumed += 1
    if secret not in wiring.produced:
        wiring.problems.append(f"{who} uses Secret {secret}, which no ExternalSecret writes")
        return
    keys = wiring.produced[secret]
    if key is not None and keys is not ALL_KEYS and key not in keys:
        wiring.problems.append(
            f"{who} uses key {key!r} of Secret {secret}, which its ExternalSecret does not "
            f"write (it writes: {', '.join(sorted(keys))})"
        )


def _secret_files(
    pod: Mapping[str, Any], container: Mapping[str, Any]
) -> dict[str, tuple[str, str | None]]:
    """Files a container sees from Secret volumes: path -> (secret name, key or None)."""
    volumes = {v["name"]: v["secret"] for v in pod.get("volumes") or [] if "secret" in v}
    files: dict[str, tuple[str, str | None]] = {}
    for mount in container.get("volumeMounts") or []:
        secret = volumes.get(mount["name"])
        if secret is None:
            continue
        base = mount["mountPath"].rstrip("/")
        if mount.get("subPath"):
            files[base] = (secret["secretName"], mount["subPath"])
        elif secret.get("items"):
            for item in secret["items"]:
                files[posixpath.join(base, item["path"])] = (secret["secretName"], item["key"])
        else:
            files[base + "/*"] = (secret["secretName"], None)
    return files


def _check_container(
    wiring: Wiring,
    who: str,
    pod: Mapping[str, Any],
    c: Mapping[str, Any],
    used: set[tuple[str, str | None]],
) -> None:
    files = _secret_files(pod, c)
    env = {e["name"]: e for e in c.get("env") or []}
    provided: set[str] = set()
    for name, entry in env.items():
        ref = (entry.get("valueFrom") or {}).get("secretKeyRef")
        if ref:
            provided.add(name)
            used.add((ref["name"], ref["key"]))
            if not ref.get("optional"):
                _need(wiring, f"{who} env {name}", ref["name"], ref["key"])
        if name.endswith("_FILE") and "value" in entry:
            path = str(entry["value"])
            source = files.get(path) or files.get(posixpath.dirname(path) + "/*")
            if source is None:
                wiring.problems.append(f"{who} env {name}={path} names no mounted Secret file")
                continue
            secret, key = source
            _need(wiring, f"{who} env {name}", secret, key or posixpath.basename(path))
            provided.add(name.removesuffix("_FILE"))
    algorithm = str(env.get("JWT_ALGORITHM", {}).get("value", "HS256"))
    jwt = "JWT_PUBLIC_KEY" if algorithm == "RS256" else "JWT_SECRET"
    needed = SERVICE_SECRETS.get(str(c.get("name")))
    if needed is not None:
        for name in (*needed, jwt):
            if name not in provided:
                wiring.problems.append(
                    f"{who} does not get {name}: set {name}_FILE to a mounted Secret file"
                )


def wire(manifests: Sequence[Manifest], mount: str | None, prefix: str | None) -> Wiring:
    """Which Secret keys the rendered objects produce and consume, and what does not match."""
    wiring = Wiring()
    external_secrets(manifests, mount, prefix, wiring)
    used: set[tuple[str, str | None]] = set()
    for m in manifests:
        found = pod_spec(m.doc)
        if found is not None:
            pod = found[0]
            for v in pod.get("volumes") or []:
                if "secret" in v and not v["secret"].get("optional"):
                    for item in v["secret"].get("items") or [{"key": None}]:
                        used.add((v["secret"]["secretName"], item["key"]))
                        _need(
                            wiring,
                            f"{m.ref} volume {v['name']}",
                            v["secret"]["secretName"],
                            item["key"],
                        )
            for c, _path in containers(m.doc):
                _check_container(wiring, f"{m.ref} container {c.get('name')}", pod, c, used)
        elif m.kind == "Cluster":
            _cluster_secrets(wiring, m, used)
    for secret, keys in sorted(wiring.produced.items()):
        for key in sorted(keys or ()):
            if (secret, key) not in used and (secret, None) not in used:
                wiring.unused.append(f"{secret}/{key}")
    return wiring


def _cluster_secrets(wiring: Wiring, m: Manifest, used: set[tuple[str, str | None]]) -> None:
    spec = m.doc["spec"]
    initdb = (spec.get("bootstrap") or {}).get("initdb") or {}
    refs: list[tuple[str, str | None]] = []
    if initdb.get("secret"):
        refs += [(initdb["secret"]["name"], k) for k in ("username", "password")]
    store = (spec.get("backup") or {}).get("barmanObjectStore") or {}
    for ref in (store.get("s3Credentials") or {}).values():
        if isinstance(ref, dict) and "name" in ref:
            refs.append((ref["name"], ref.get("key")))
    for name, key in refs:
        used.add((name, key))
        _need(wiring, m.ref, name, key)


# ---------------------------------------------------------------- Vault


def read_token(environ: Mapping[str, str]) -> str:
    token = environ.get("VAULT_TOKEN", "").strip()
    if token:
        return token
    token_file = environ.get("VAULT_TOKEN_FILE")
    if token_file:
        try:
            token = Path(token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise UsageError(
                f"VAULT_TOKEN_FILE names {token_file!r}, which cannot be read: {exc.strerror}"
            ) from exc
        if token:
            return token
    raise UsageError(
        "no Vault token", hint="set VAULT_TOKEN, or VAULT_TOKEN_FILE to a file holding one"
    )


def vault_client(addr: str, token: str, timeout_s: float = VAULT_TIMEOUT_S) -> Any:
    import hvac  # only `secrets check` needs it

    verify: bool | str = os.environ.get("VAULT_CACERT") or True
    return hvac.Client(url=addr, token=token, timeout=timeout_s, verify=verify)


def _ask(addr: str, what: str, call: Any) -> Any:
    """Run one Vault call, turning its failures into the golive error tree."""
    import hvac.exceptions
    import requests

    try:
        return call()
    except hvac.exceptions.InvalidPath:
        return None
    except (hvac.exceptions.Forbidden, hvac.exceptions.Unauthorized) as exc:
        raise VaultAuthError(f"Vault at {addr} refused {what} (permission denied)") from exc
    except hvac.exceptions.VaultDown as exc:
        raise VaultUnreachableError(f"Vault at {addr} is sealed or down") from exc
    except hvac.exceptions.VaultError as exc:
        raise VaultError(f"Vault at {addr} failed {what}: {type(exc).__name__}") from exc
    except requests.exceptions.RequestException as exc:
        raise VaultUnreachableError(
            f"Vault at {addr} is unreachable ({type(exc).__name__}) while asking {what}"
        ) from exc


def vault_status(client: Any, addr: str, paths: Sequence[VaultPath]) -> list[tuple[VaultPath, str]]:
    """(path, "version N") for each present entry, (path, "") for each missing one."""
    if not _ask(addr, "a token lookup", client.is_authenticated):
        raise VaultAuthError(f"Vault at {addr} does not accept the token")
    out = []
    for vp in paths:
        meta = _ask(
            addr,
            f"the metadata of {vp}",
            lambda vp=vp: client.secrets.kv.v2.read_secret_metadata(
                path=vp.path, mount_point=vp.mount
            ),
        )
        data = (meta or {}).get("data") or {}
        current = str(data.get("current_version", ""))
        version = (data.get("versions") or {}).get(current) or {}
        alive = version and not version.get("deletion_time") and not version.get("destroyed")
        out.append((vp, f"version {current}" if alive else ""))
    return out


# ---------------------------------------------------------------- the check


def check(
    *,
    vault_addr: str | None,
    mount: str | None = None,
    prefix: str | None = None,
    manifests: Sequence[Path] = DEFAULT_MANIFESTS,
    environ: Mapping[str, str] | None = None,
    emit: Callable[[str], None] = print,
) -> None:
    """Run the whole check, reporting line by line through ``emit``; raise a GoLiveError."""
    environ = os.environ if environ is None else environ
    addr = vault_addr or environ.get("VAULT_ADDR")
    if not addr:
        raise UsageError("no Vault address", hint="set VAULT_ADDR or pass --vault-addr")
    token = read_token(environ)
    rendered: list[Manifest] = []
    for path in manifests:
        rendered += render(path)
    wiring = wire(rendered, mount, prefix)
    if wiring.problems:
        raise SecretWiringError(wiring.problems)
    emit(
        f"wiring: {wiring.consumed} Secret references in {len(manifests)} manifest set(s), "
        "all written by ExternalSecrets"
    )
    for key in wiring.unused:
        emit(f"  note: {key} is written but no workload uses it")
    statuses = vault_status(vault_client(addr, token), addr, wiring.vault_paths)
    emit(f"vault: {addr}, {len(statuses)} KV v2 paths (metadata only)")
    for vp, state in statuses:
        emit(f"  {'ok' if state else 'MISSING':8} {vp} {state}".rstrip())
    missing = [str(vp) for vp, state in statuses if not state]
    if missing:
        raise MissingSecretsError(missing)
    emit("secrets check passed")
