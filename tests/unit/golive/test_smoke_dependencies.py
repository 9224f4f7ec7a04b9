"""An external service passes the smoke test only with its own health answer."""

from __future__ import annotations

import argparse

import pytest
from tests.conftest import REPO

from golive.cli import _dependency
from golive.plan import Smoke, SmokeDependency, load
from golive.smoke import Dependency, health_answer
from golive.steps.smoke import smoke_request
from golive.targets.fake import FakeTarget

BUREAU = Dependency("credit bureau", "http://127.0.0.1:9/health", {"status": "ok"})


@pytest.mark.parametrize(
    ("status", "body", "verdict", "says"),
    [
        (200, b'{"status": "ok"}', "passed", "status=ok"),
        (404, b'{"detail": "not found"}', "failed", "404, not its health answer"),
        (401, b"", "failed", "401, not its health answer"),
        (500, b'{"status": "ok"}', "failed", "500"),
        (200, b"<html>a login page</html>", "failed", "not JSON"),
        (200, b"[1, 2]", "failed", "not a JSON object"),
        (200, b'{"status": "UP"}', "failed", "where status=ok was expected"),
        (200, b"{}", "failed", "where status=ok was expected"),
    ],
)
def test_health_answers_are_judged(status: int, body: bytes, verdict: str, says: str) -> None:
    got, detail = health_answer(BUREAU, status, body)
    assert got == verdict
    assert says in detail


def test_without_expected_fields_a_200_is_enough_and_nothing_else_is() -> None:
    bare = Dependency("legacy system", "http://127.0.0.1:9/legacy/health")
    assert health_answer(bare, 200, b"anything")[0] == "passed"
    assert health_answer(bare, 204, b"")[0] == "failed"


def test_the_plan_names_dependencies_and_the_target_adds_its_own() -> None:
    smoke = Smoke(
        dependencies=[SmokeDependency(name="credit bureau", url="https://bureau.internal/health")]
    )
    plan = load(REPO / "deploy" / "golive" / "rehearsal.yaml").model_copy(update={"smoke": smoke})
    target = FakeTarget(
        known_dependencies=[
            Dependency("credit bureau", "http://127.0.0.1:1/health", {"status": "ok"}),
            Dependency("legacy system", "http://127.0.0.1:2/legacy/health", {"status": "UP"}),
        ]
    )
    request = smoke_request(plan, target)
    assert [(d.name, d.health_url) for d in request.dependencies] == [
        ("credit bureau", "https://bureau.internal/health"),  # the plan's wins
        ("legacy system", "http://127.0.0.1:2/legacy/health"),
    ]


@pytest.mark.parametrize(
    "text", ["=http://x/health", "bureau=ftp://x", "bureau", "bureau=http://x/health,status"]
)
def test_the_cli_refuses_a_malformed_dependency(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="NAME=URL"):
        _dependency(text)


def test_the_cli_reads_a_dependency_with_expected_fields() -> None:
    got = _dependency("credit bureau=http://127.0.0.1:8/health,status=ok,service=bureau")
    assert got == Dependency(
        "credit bureau", "http://127.0.0.1:8/health", {"status": "ok", "service": "bureau"}
    )
