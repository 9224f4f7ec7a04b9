"""The local target for real: slots as processes, HAProxy as the Service, the story's smoke
script against every slot and the router, manual switches verified by reading state back, and
an unreachable target that changes nothing."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from golive import cli
from golive.errors import SmokeFailed
from golive.plan import load
from golive.rehearsal import environment
from golive.service import service_cli, service_token
from golive.targets.local import LocalTarget
from tests.integration.golive.plans import REPO, needs_haproxy, write_plan

pytestmark = [needs_haproxy, pytest.mark.slow]


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, LocalTarget]]:
    directory = tmp_path_factory.mktemp("golive-local")
    plan_path = write_plan(directory)
    target = environment.up(load(plan_path))
    try:
        yield plan_path, target
    finally:
        environment.stop_everything(target)


def smoke_script(url: str, token: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(REPO / "scripts" / "smoke-tests.sh"), url],
        env={**os.environ, "API_TOKEN": token},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_story_smoke_script_passes_against_every_slot_and_the_router(local, capsys):
    _, target = local
    token = service_token(target.service_env(), service_cli(), "smoke-test")
    assert target.deploy("green")
    target.wait_ready("green", 60)
    try:
        for url in (target.slot_url("blue"), target.slot_url("green"), target.service_url()):
            result = smoke_script(url, token)
            assert result.returncode == 0, result.stdout + result.stderr
            assert "All smoke tests passed!" in result.stdout

        os.environ["GOLIVE_TEST_TOKEN"] = token
        smoke = ["smoke", target.slot_url("green"), "--token-env", "GOLIVE_TEST_TOKEN"]
        assert cli.main(smoke) == 0
        out = capsys.readouterr().out
        assert "[ok] metrics flowing" in out and "[skip] external services" in out

        # The emulators the target started, each judged by its own health answer.
        deps = {d.name: d for d in target.dependencies()}
        assert set(deps) == {"credit bureau", "legacy system"}
        flags = []
        for d in deps.values():
            fields = "".join(f",{k}={v}" for k, v in d.expect.items())
            flags += ["--dependency", f"{d.name}={d.health_url}{fields}"]
        assert cli.main([*smoke, *flags]) == 0
        out = capsys.readouterr().out
        assert "[ok] external service: credit bureau" in out
        assert "[ok] external service: legacy system" in out

        # The wrong host answers 200 too, but not with the bureau's health answer; a 404 fails.
        bureau = deps["credit bureau"]
        legacy_health = deps["legacy system"].health_url
        wrong = ["--dependency", f"credit bureau={legacy_health},status=ok"]
        assert cli.main([*smoke, *wrong]) == SmokeFailed.exit_code
        assert "[FAIL] external service: credit bureau" in capsys.readouterr().out
        missing = ["--dependency", f"credit bureau={bureau.health_url}/nope"]
        assert cli.main([*smoke, *missing]) == SmokeFailed.exit_code
        assert "-> 404, not its health answer" in capsys.readouterr().out
    finally:
        os.environ.pop("GOLIVE_TEST_TOKEN", None)
        target.stop("green")


def test_manual_switch_is_verified_and_idempotent(local, capsys):
    plan_path, target = local
    target.deploy("green")
    target.wait_ready("green", 60)
    try:
        assert cli.main(["switch", "green", "--plan", str(plan_path)]) == 0
        assert "switched" in capsys.readouterr().out
        assert target.router_state().active == "green"
        assert cli.main(["switch", "green", "--plan", str(plan_path)]) == 0
        assert "nothing changed" in capsys.readouterr().out
        assert cli.main(["status", "--plan", str(plan_path)]) == 0
        status = capsys.readouterr().out
        assert "new requests -> green" in status and "blue: running" in status
        assert cli.main(["switch", "blue", "--plan", str(plan_path)]) == 0
        assert target.router_state().active == "blue"
    finally:
        target.switch("blue")
        target.stop("green")
    assert target.router_state().servers["green"].startswith("maint")


def test_an_unreachable_target_is_a_clear_error_and_nothing_changes(tmp_path, capsys):
    plan_path = write_plan(tmp_path)  # no environment was brought up for this state dir
    assert cli.main(["run", str(plan_path), "--plain"]) == 6
    err = capsys.readouterr().err
    assert "preflight failed, nothing was changed" in err
    assert "no HAProxy running" in err
    assert not (tmp_path / "state" / "backups").exists()


def test_golive_down_stops_everything_up_started_the_embedded_postgresql_too(tmp_path, capsys):
    from tests.integration.golive.plans import leftover_processes

    plan_path = write_plan(tmp_path)
    plan = load(plan_path)
    pg_dir = plan.database.embedded_dir
    assert pg_dir is not None
    try:
        assert cli.main(["up", str(plan_path)]) == 0
        assert (pg_dir / "postmaster.pid").exists()
        postmaster = int((pg_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        assert cli.main(["down", str(plan_path)]) == 0
        out = capsys.readouterr().out
        assert "embedded PostgreSQL" in out and "router" in out and "blue" in out
        assert not (pg_dir / "postmaster.pid").exists()
        assert (
            not Path(f"/proc/{postmaster}").exists()
            or " Z " in Path(f"/proc/{postmaster}/stat").read_text()
        )
        assert leftover_processes(tmp_path / "state") == []
    finally:
        environment.down(plan)
