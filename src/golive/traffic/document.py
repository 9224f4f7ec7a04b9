"""The flagd flag-definition document: the format both flagd providers write and read.

The ``flagd-file`` provider keeps it in a file the local slots read, ``kubernetes-configmap`` in a
ConfigMap key the pods mount; the service's flagd provider evaluates it. Every function keeps the
document's other flags as they are.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from golive.traffic.base import FLAG_KEY, TrafficFlagError, check_percent


def flag_definition(percent: int) -> dict[str, Any]:
    """The flagd definition of the traffic flag at ``percent``."""
    return {
        "state": "ENABLED",
        "variants": {"on": True, "off": False},
        "defaultVariant": "off",
        "targeting": {"fractional": [["on", percent], ["off", 100 - percent]]},
    }


def parse_document(content: bytes, where: str, hint: str) -> dict[str, Any]:
    """A flagd flag-definition document, refused when it could not be rewritten safely."""
    try:
        document = json.loads(content)
    except ValueError as exc:
        raise TrafficFlagError(
            f"{where} is not valid JSON; refusing to overwrite it ({exc})", hint=hint
        ) from exc
    if not isinstance(document, dict) or not isinstance(document.get("flags", {}), dict):
        raise TrafficFlagError(f"{where} has no 'flags' object")
    return document


def with_weight(document: dict[str, Any], key: str, percent: int) -> str:
    """The document's text with the traffic flag at ``percent``, every other flag kept."""
    document.setdefault("flags", {})[key] = flag_definition(check_percent(percent))
    return json.dumps(document, indent=2) + "\n"


def flag_set_version(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()[:12]


def weight_of(document: Mapping[str, Any], key: str) -> int:
    """The share of clients a flag definition sends to ``on`` (0 when absent or disabled)."""
    flag = (document.get("flags") or {}).get(key)
    if not isinstance(flag, dict) or flag.get("state") != "ENABLED":
        return 0
    variants = flag.get("variants") or {}
    buckets = (flag.get("targeting") or {}).get("fractional")
    if not buckets:
        return 100 if variants.get(flag.get("defaultVariant")) is True else 0
    weights = [b for b in buckets if isinstance(b, list) and len(b) == 2]
    total = sum(float(w) for _, w in weights)
    on = sum(float(w) for name, w in weights if variants.get(name) is True)
    return round(100 * on / total) if total > 0 else 0


def write_disabled(path: Path, flag_key: str = FLAG_KEY) -> None:
    """A fresh flag file with the traffic flag DISABLED: every client on legacy (story AC 5)."""
    document = {"flags": {flag_key: {**flag_definition(0), "state": "DISABLED"}}}
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.new")
    temporary.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, path)
