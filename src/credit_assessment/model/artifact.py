"""The scorecard artifact: a small versioned JSON file, read and checked with the standard library.

Layout (``format`` ``credit-assessment/scorecard``, ``format_version`` 1)::

    version           "scorecard-<release>-<digest>", the digest covering the content
    checksum          "sha256:<hex>" of the canonical JSON of everything else
    money_unit_zmw    ZMW per scorecard money unit (100: the training data is in 100s of ZMW)
    base_points       added to the characteristics' points (0: the intercept is spread over them)
    reference_score   the cutoff whose typical applicant's points rank the adverse reasons
    grades            [{"grade": "A", "min_score": 567}, ...] best first
    characteristics   [{"name", "kind": "numeric"|"categorical", "splits" | "groups",
                        "points", "missing_points", "reference_points", "reason"}]
    training          free-form facts about the data and the fit (not read when serving)

Anything wrong -- unreadable, truncated, altered after training, or naming characteristics this
engine does not compute -- raises :class:`ModelArtifactError` naming the file and the problem;
the service refuses readiness with that message.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from credit_assessment.domain.scorecard import (
    CATEGORICAL,
    CategoricalCharacteristic,
    Characteristic,
    GradeBand,
    NumericCharacteristic,
    Scorecard,
)
from credit_assessment.domain.types import Reason

FORMAT = "credit-assessment/scorecard"
FORMAT_VERSION = 1
DEFAULT_PATH = Path(__file__).with_name("scorecard.json")


class ModelArtifactError(Exception):
    """A model or policy file cannot be used. ``str(error)`` names the file and the problem."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


def canonical_json(document: Mapping[str, Any]) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def content_digest(document: Mapping[str, Any]) -> str:
    """SHA-256 of the content, leaving out ``version`` and ``checksum``."""
    body = {k: v for k, v in document.items() if k not in ("version", "checksum")}
    return hashlib.sha256(canonical_json(body)).hexdigest()


def seal(document: Mapping[str, Any], release: str) -> dict[str, Any]:
    """Stamp a freshly trained document with its version and checksum."""
    sealed = {k: v for k, v in document.items() if k not in ("version", "checksum")}
    sealed["format"] = FORMAT
    sealed["format_version"] = FORMAT_VERSION
    sealed["version"] = f"scorecard-{release}-{content_digest(sealed)[:10]}"
    sealed["checksum"] = "sha256:" + hashlib.sha256(canonical_json(sealed)).hexdigest()
    return sealed


def dumps(document: Mapping[str, Any]) -> str:
    """The artifact as committed: sorted keys, one line per characteristic (readable diffs)."""

    def line(value: Any) -> str:
        return json.dumps(value, sort_keys=True, allow_nan=False, ensure_ascii=False)

    fields = []
    for key in sorted(document):
        value = document[key]
        if key == "characteristics" and isinstance(value, list):
            items = ",\n".join(f"  {line(item)}" for item in value)
            fields.append(f"{line(key)}: [\n{items}\n ]")
        else:
            fields.append(f"{line(key)}: {line(value)}")
    return "{\n " + ",\n ".join(fields) + "\n}\n"


def read_document(source: Path, what: str, parse_float: Any = None) -> object:
    """The JSON document in ``source``; a ModelArtifactError naming the file and the problem."""
    try:
        text = source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelArtifactError(source, f"cannot read the {what} ({exc})") from exc
    try:
        return json.loads(text, parse_float=parse_float)
    except json.JSONDecodeError as exc:
        raise ModelArtifactError(
            source,
            f"not valid JSON, truncated or corrupted ({exc.msg} at line {exc.lineno} "
            f"column {exc.colno})",
        ) from exc


def load_model(path: str | Path | None = None) -> Scorecard:
    """Read, verify and build the scorecard at ``path`` (the packaged artifact by default)."""
    source = Path(path) if path is not None else DEFAULT_PATH
    return parse_model(read_document(source, "model artifact"), source)


@functools.cache
def default_model() -> Scorecard:
    """The packaged scorecard, loaded once per process."""
    return load_model()


def parse_model(document: object, source: str | Path = "<memory>") -> Scorecard:
    """Build a :class:`Scorecard` from a parsed artifact, or say precisely what is wrong."""
    if not isinstance(document, dict):
        raise ModelArtifactError(source, "the artifact is not a JSON object")
    if document.get("format") != FORMAT:
        raise ModelArtifactError(
            source, f"format is {document.get('format')!r}, expected {FORMAT!r}"
        )
    if document.get("format_version") != FORMAT_VERSION:
        raise ModelArtifactError(
            source,
            f"format_version {document.get('format_version')!r} is not supported "
            f"(this engine reads {FORMAT_VERSION})",
        )
    checksum = document.get("checksum")
    body = {k: v for k, v in document.items() if k != "checksum"}
    try:
        actual = "sha256:" + hashlib.sha256(canonical_json(body)).hexdigest()
    except ValueError as exc:  # NaN or Infinity smuggled into the numbers
        raise ModelArtifactError(source, f"the artifact holds a non-finite number ({exc})") from exc
    if checksum != actual:
        raise ModelArtifactError(
            source,
            f"checksum mismatch: the file was altered after training "
            f"(recorded {checksum!r}, content hashes to {actual!r})",
        )
    try:
        return _build(document)
    except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
        problem = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
        raise ModelArtifactError(source, f"invalid scorecard: {problem}") from exc


def _build(doc: Mapping[str, Any]) -> Scorecard:
    characteristics = tuple(
        _characteristic(i, item) for i, item in enumerate(_list(doc, "characteristics"))
    )
    if not characteristics:
        raise ValueError("the scorecard has no characteristics")
    grades = tuple(
        GradeBand(grade=_str(g, "grade"), min_score=_int(g, "min_score"))
        for g in _list(doc, "grades")
    )
    return Scorecard(
        version=_str(doc, "version"),
        characteristics=characteristics,
        grades=grades,
        reference_score=_int(doc, "reference_score"),
        money_unit_zmw=Decimal(_int(doc, "money_unit_zmw")),
        base_points=_int(doc, "base_points"),
    )


def _characteristic(index: int, item: object) -> Characteristic:
    if not isinstance(item, dict):
        raise TypeError(f"characteristics[{index}] is not an object")
    name = _str(item, "name")
    where = f"characteristic {name!r}"
    kind = _str(item, "kind")
    expected = "categorical" if name in CATEGORICAL else "numeric"
    if kind != expected:
        raise ValueError(f"{where} is {kind!r}; this engine computes it as {expected!r}")
    points = tuple(_ints(item, "points", where))
    reason_doc = item.get("reason")
    if not isinstance(reason_doc, dict):
        raise TypeError(f"{where}: reason must be an object with code and description")
    reason = Reason(_str(reason_doc, "code"), _str(reason_doc, "description"))
    reference = item.get("reference_points")
    if not isinstance(reference, int | float) or isinstance(reference, bool):
        raise TypeError(f"{where}: reference_points must be a number")
    missing = _int(item, "missing_points")
    if kind == "categorical":
        groups = _list(item, "groups")
        if not all(isinstance(g, list) and all(isinstance(c, str) for c in g) for g in groups):
            raise TypeError(f"{where}: groups must be lists of category names")
        return CategoricalCharacteristic(
            name, tuple(frozenset(g) for g in groups), points, missing, float(reference), reason
        )
    splits = _list(item, "splits")
    if not all(isinstance(s, int | float) and not isinstance(s, bool) for s in splits):
        raise TypeError(f"{where}: splits must be numbers")
    return NumericCharacteristic(
        name, tuple(float(s) for s in splits), points, missing, float(reference), reason
    )


def _list(doc: Mapping[str, Any], key: str) -> list[Any]:
    value = doc[key]
    if not isinstance(value, list):
        raise TypeError(f"{key} must be a list")
    return value


def _str(doc: Mapping[str, Any], key: str) -> str:
    value = doc[key]
    if not isinstance(value, str) or not value:
        raise TypeError(f"{key} must be a non-empty string")
    return value


def _int(doc: Mapping[str, Any], key: str) -> int:
    value = doc[key]
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{key} must be an integer, got {value!r}")
    return value


def _ints(doc: Mapping[str, Any], key: str, where: str) -> list[int]:
    values = _list(doc, key)
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise TypeError(f"{where}: {key} must be integers")
    return values
