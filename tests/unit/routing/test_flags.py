"""The traffic flag file: parsing, stickiness across stages, and keeping good flags."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest

from credit_assessment.routing import FLAG_KEY
from credit_assessment.routing.flags import FlagdFileFlag, FlagFileError, parse_flag_file


def flag_document(weight: int, state: str = "ENABLED") -> dict[str, object]:
    return {
        "flags": {
            FLAG_KEY: {
                "state": state,
                "variants": {"on": True, "off": False},
                "defaultVariant": "off",
                "targeting": {"fractional": [["on", weight], ["off", 100 - weight]]},
            },
            "unrelated-flag": {"state": "ENABLED", "variants": {"a": 1}, "defaultVariant": "a"},
        }
    }


def write(path: Path, document: object, mtime: float) -> None:
    path.write_text(json.dumps(document), encoding="utf-8")
    os.utime(path, (mtime, mtime))


@pytest.mark.parametrize(
    ("document", "weight"),
    [
        (flag_document(10), 10),
        (flag_document(0), 0),
        (flag_document(100), 100),
        (flag_document(50, state="DISABLED"), 0),
        ({"flags": {}}, 0),
        (
            {
                "flags": {
                    FLAG_KEY: {
                        "state": "ENABLED",
                        "variants": {"on": True, "off": False},
                        "defaultVariant": "on",
                    }
                }
            },
            100,
        ),
    ],
)
def test_weight_is_read_from_the_rollout(document: object, weight: int) -> None:
    assert parse_flag_file(json.dumps(document).encode()).weight_percent == weight


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b"[]",
        b'{"flags": []}',
        json.dumps(
            {
                "flags": {
                    FLAG_KEY: {
                        "state": "ENABLED",
                        "variants": {"on": True},
                        "defaultVariant": "on",
                        "targeting": {"fractional": [["nope", 10]]},
                    }
                }
            }
        ).encode(),
    ],
)
def test_bad_files_are_rejected_with_a_reason(content: bytes) -> None:
    with pytest.raises(FlagFileError):
        parse_flag_file(content)


async def test_clients_stick_to_their_engine_as_the_weight_rises(tmp_path: Path) -> None:
    path = tmp_path / "flags.json"
    flag = FlagdFileFlag(path, tmp_path)
    clients = [uuid.uuid4() for _ in range(2000)]
    on_by_stage = []
    for stage, weight in enumerate((10, 50, 100)):
        write(path, flag_document(weight), 1_000 + stage)
        flag.reload()
        assert flag.current is not None and flag.current.weight_percent == weight
        on_by_stage.append({c for c in clients if flag.enabled_for(c)})
    ten, fifty, hundred = on_by_stage
    assert 0.07 < len(ten) / len(clients) < 0.13
    assert 0.45 < len(fifty) / len(clients) < 0.55
    assert hundred == set(clients)
    assert ten <= fifty <= hundred  # nobody moves back to legacy as the weight rises
    await flag.stop()


async def test_missing_then_invalid_files_never_replace_good_flags(tmp_path: Path) -> None:
    path = tmp_path / "flags.json"
    flag = FlagdFileFlag(path, tmp_path)
    flag.reload()
    assert flag.problem is not None and "unreadable" in flag.problem
    assert flag.enabled_for(uuid.uuid4()) is False  # no flags: the safe default, legacy

    write(path, flag_document(100), 2_000)
    flag.reload()
    assert flag.problem is None
    good = flag.current
    assert good is not None and flag.enabled_for(uuid.uuid4())

    path.write_text("{truncated", encoding="utf-8")
    os.utime(path, (2_001, 2_001))
    flag.reload()
    assert flag.current == good
    assert flag.problem is None  # still serving the last good version
    assert flag.state()["problem"] and "rejected" in flag.state()["problem"]
    assert flag.enabled_for(uuid.uuid4())
    await flag.stop()
