"""The flag providers at their port: the flagd file, read-back, and the LaunchDarkly patch."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

import httpx
import pytest

from golive import traffic
from golive.errors import TrafficFlagError
from golive.traffic.base import FLAG_KEY, verify_weight
from golive.traffic.document import flag_definition, weight_of, write_disabled
from golive.traffic.flagd import FlagdFileFlag
from golive.traffic.launchdarkly import LaunchDarklyFlag, api_key_from


def test_file_shape_at_every_weight(tmp_path: Path) -> None:
    path = tmp_path / "flags" / "flags.json"
    flag = FlagdFileFlag(path)
    for percent in (0, 10, 50, 100):
        flag.set_weight(percent)
        document = json.loads(path.read_text())
        assert document["flags"][FLAG_KEY] == {
            "state": "ENABLED",
            "variants": {"on": True, "off": False},
            "defaultVariant": "off",
            "targeting": {"fractional": [["on", percent], ["off", 100 - percent]]},
        }
        assert flag.weight() == percent
        assert flag.version() == hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    assert [p.name for p in path.parent.iterdir()] == ["flags.json"]  # no temporary left


def test_the_first_weight_enables_a_disabled_flag_and_zero_leaves_it_enabled(
    tmp_path: Path,
) -> None:
    path = tmp_path / "flags.json"
    write_disabled(path)
    flag = FlagdFileFlag(path)
    assert flag.weight() == 0 and flag.stored_weights() == {FLAG_KEY: 0}
    flag.set_weight(10)
    assert json.loads(path.read_text())["flags"][FLAG_KEY]["state"] == "ENABLED"
    assert flag.weight() == 10 and flag.stored_weights() == {FLAG_KEY: 10}
    flag.set_weight(0)  # a rollback: enabled at 0%, one write away from the weight it undid
    assert json.loads(path.read_text())["flags"][FLAG_KEY]["state"] == "ENABLED"
    assert flag.weight() == 0


def test_other_flags_and_keys_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "flags.json"
    other = {"state": "DISABLED", "variants": {"a": 1}, "defaultVariant": "a"}
    path.write_text(json.dumps({"$schema": "x", "flags": {"other": other}}))
    FlagdFileFlag(path).set_weight(10)
    document = json.loads(path.read_text())
    assert document["$schema"] == "x"
    assert document["flags"]["other"] == other
    assert weight_of(document, FLAG_KEY) == 10


def test_no_file_reads_as_zero_and_a_broken_file_is_not_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "flags.json"
    flag = FlagdFileFlag(path)
    assert flag.weight() == 0 and flag.version() is None
    path.write_text("{not json")
    with pytest.raises(TrafficFlagError, match="is not valid JSON"):
        flag.set_weight(10)
    assert path.read_text() == "{not json"


@pytest.mark.parametrize("percent", [-1, 101, 10.5, True, "10"])
def test_weights_are_whole_percentages(tmp_path: Path, percent) -> None:
    with pytest.raises(TrafficFlagError, match="whole percentage"):
        FlagdFileFlag(tmp_path / "f.json").set_weight(percent)


def test_weight_of_reads_what_the_service_reads() -> None:
    assert weight_of({"flags": {}}, FLAG_KEY) == 0
    disabled = flag_definition(50) | {"state": "DISABLED"}
    assert weight_of({"flags": {FLAG_KEY: disabled}}, FLAG_KEY) == 0
    always = {"state": "ENABLED", "variants": {"on": True}, "defaultVariant": "on"}
    assert weight_of({"flags": {FLAG_KEY: always}}, FLAG_KEY) == 100


def _instances(answers: dict[str, object]) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        host = f"http://{request.url.host}:{request.url.port}"
        answer = answers[host]
        if isinstance(answer, Exception):
            raise answer
        return httpx.Response(200, json=answer)

    return httpx.MockTransport(handle)


def _state(version: str | None, weight: int) -> dict[str, object]:
    return {
        "flagSetVersion": version,
        "flags": {FLAG_KEY: {"weightPercent": weight}},
        "provider": "flagd-file",
    }


def test_verify_waits_for_every_instance(tmp_path: Path) -> None:
    path = tmp_path / "flags.json"
    answers: dict[str, object] = {}
    hosts = ["http://127.0.0.1:1", "http://127.0.0.1:2"]
    flag = FlagdFileFlag(path, instances=hosts, transport=_instances(answers), poll_s=0.01)
    flag.set_weight(10)
    version = flag.version()
    answers.update({hosts[0]: _state(version, 10), hosts[1]: _state(version, 10)})
    states = flag.verify(percent=10, timeout_s=1)
    assert {s.version for s in states.values()} == {version}
    assert flag.read_weights() == {hosts[0]: 10, hosts[1]: 10}
    assert verify_weight(flag, 10) == {hosts[0]: 10, hosts[1]: 10}

    # one instance still on the old version, one unreachable: both named
    answers.update({hosts[0]: _state("0123456789ab", 10), hosts[1]: httpx.ConnectError("refused")})
    with pytest.raises(TrafficFlagError) as caught:
        flag.verify(percent=10, timeout_s=0.05)
    message = str(caught.value)
    assert "2 of 2 instance(s) did not converge on weight 10%" in message
    assert "http://127.0.0.1:1 (weight 10%, version 0123456789ab)" in message
    assert "http://127.0.0.1:2 (unreachable: ConnectError)" in message
    with pytest.raises(TrafficFlagError, match="cannot read flag"):
        flag.read_weights()


def test_verify_needs_instances(tmp_path: Path) -> None:
    with pytest.raises(TrafficFlagError, match="no serving instances"):
        FlagdFileFlag(tmp_path / "f.json").verify(percent=0, timeout_s=0.1)


def test_providers_are_registered() -> None:
    from golive.traffic import configmap, flagd, launchdarkly

    assert traffic.provider("flagd-file") is flagd.from_plan
    assert traffic.provider("launchdarkly") is launchdarkly.from_plan
    assert traffic.provider("kubernetes-configmap") is configmap.from_plan
    assert set(traffic.registered()) >= {"flagd-file", "launchdarkly", "kubernetes-configmap"}


def test_an_unknown_provider_fails_loudly_naming_the_registered_ones() -> None:
    from golive.errors import PlanError

    with pytest.raises(PlanError) as caught:
        traffic.provider("consul")
    assert "no traffic flag provider 'consul'" in str(caught.value)
    assert "flagd-file" in str(caught.value)


# --------------------------------------------------------------------------- LaunchDarkly


def test_launchdarkly_patch_is_the_story_s(monkeypatch) -> None:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={})

    flag = LaunchDarklyFlag(api_key="api-secret-1", transport=httpx.MockTransport(handle))
    flag.set_weight(10)
    (request,) = seen
    assert request.method == "PATCH"
    assert request.url.path == "/api/v2/flags/production/new-credit-assessment-enabled"
    assert request.headers["Authorization"] == "api-secret-1"
    body = json.loads(request.content)
    assert body["patch"][0] == {
        "op": "replace",
        "path": "/environments/production/rules/0/rollout/variations/0/weight",
        "value": 10000,
    }
    assert body["patch"][1]["value"] == 90000
    only = LaunchDarklyFlag(api_key="k", complement_variation=None)
    assert len(only.patch_body(50)["patch"]) == 1
    assert "api-secret-1" not in repr(flag)


def test_launchdarkly_errors_never_show_the_key() -> None:
    transport = httpx.MockTransport(
        lambda r: httpx.Response(401, json={"message": "Invalid account ID header"})
    )
    flag = LaunchDarklyFlag(api_key="api-secret-2", transport=transport, attempts=1)
    with pytest.raises(TrafficFlagError) as caught:
        flag.set_weight(50)
    assert "answered 401: Invalid account ID header" in str(caught.value)
    assert "api-secret-2" not in str(caught.value)


def test_launchdarkly_retries_rate_limits() -> None:
    answers = iter([httpx.Response(429), httpx.Response(200, json={})])
    flag = LaunchDarklyFlag(api_key="k", transport=httpx.MockTransport(lambda r: next(answers)))
    flag.set_weight(50)


def test_api_key_from_environment_or_file(tmp_path: Path) -> None:
    assert api_key_from({"LD_API_KEY": "a "}) == "a"
    key_file = tmp_path / "key"
    key_file.write_text("from-file\n")
    assert api_key_from({"LD_API_KEY_FILE": str(key_file)}) == "from-file"
    with pytest.raises(TrafficFlagError, match="no LaunchDarkly API key"):
        api_key_from({})
    with pytest.raises(TrafficFlagError, match="cannot read LD_API_KEY_FILE"):
        api_key_from({"LD_API_KEY_FILE": str(tmp_path / "absent")})
