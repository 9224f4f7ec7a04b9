"""Targets: the registry fails loudly, the fake behaves like the port, HAProxy's config and
runtime-API answers are read right."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from golive import targets
from golive.errors import PlanError, TargetError
from golive.plan import parse
from golive.targets.fake import FakeTarget
from golive.targets.haproxy import parse_servers_state, render_config

REPO = Path(__file__).resolve().parents[3]

HEADER = " ".join(
    [
        "# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight",
        "srv_iweight srv_time_since_last_change srv_check_status srv_check_result",
        "srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id",
        "srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr",
        "srv_agent_addr srv_agent_port",
    ]
)
SHOW_SERVERS_STATE = "\n".join(
    [
        "1",
        HEADER,
        "3 be 1 blue 127.0.0.1 2 8 1 1 4 6 3 4 6 0 0 0 - 18081 - 0 0 - - 0",
        "3 be 2 green 127.0.0.1 2 4 1 1 4 6 3 4 6 0 0 0 - 18082 - 0 0 - - 0",
        "",
    ]
)


def test_registry_knows_local_and_kubernetes_and_refuses_the_rest():
    assert targets.registered() == ("kubernetes", "local")
    data = yaml.safe_load((REPO / "deploy/golive/production.yaml").read_text(encoding="utf-8"))
    plan = parse(yaml.safe_dump(data), "production.yaml")
    assert targets.create(plan).kind == "kubernetes"  # nothing is contacted until first use
    other = plan.model_copy(update={"target": plan.target.model_copy(update={"kind": "nomad"})})
    with pytest.raises(PlanError, match="no target provider 'nomad' is registered"):
        targets.create(other)


def test_show_servers_state_is_read_with_the_config_flag_ignored():
    servers = parse_servers_state(SHOW_SERVERS_STATE)
    assert servers["blue"].admin == "drain" and not servers["blue"].serving
    # admin 0x04 is the config's "disabled", kept after `state ready`: green serves.
    assert servers["green"].serving and servers["green"].port == 18082


@pytest.mark.parametrize(
    ("admin", "expected"),
    [(0, "ready"), (1, "maint"), (5, "maint"), (12, "drain"), (4, "ready"), (32, "maint")],
)
def test_admin_state_bits(admin, expected):
    text = SHOW_SERVERS_STATE.replace("2 4 1 1", f"2 {admin} 1 1", 1)
    assert parse_servers_state(text)["green"].admin == expected


@pytest.mark.skipif(
    shutil.which("haproxy") is None, reason="haproxy is not installed (apt-get install haproxy)"
)
def test_rendered_config_is_valid_haproxy(tmp_path):
    config = tmp_path / "haproxy.cfg"
    config.write_text(
        render_config(
            port=18080,
            socket_path=tmp_path / "s.sock",
            slots={"blue": 18081, "green": 18082},
            active="blue",
            check_interval_ms=1000,
        ),
        encoding="utf-8",
    )
    result = subprocess.run(
        ["haproxy", "-c", "-f", str(config)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    text = config.read_text()
    assert "server green 127.0.0.1:18082 check disabled" in text
    assert "http-response set-header X-Slot %[srv_name]" in text
    assert "option httpchk GET /ready" in text and "level admin" in text


def test_fake_target_switch_and_stop_are_idempotent_and_guarded():
    fake = FakeTarget()
    with pytest.raises(TargetError, match="not running"):
        fake.switch("green")
    assert fake.deploy("green") and not fake.deploy("green")
    assert fake.switch("green").changed and not fake.switch("green").changed
    with pytest.raises(TargetError, match="serves the traffic"):
        fake.stop("green")
    assert fake.stop("blue") and not fake.stop("blue")
