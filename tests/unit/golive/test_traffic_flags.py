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
from golive.errors import CredentialError, TrafficFlagError
from golive.traffic.base import FLAG_KEY, verify_weight
from golive.traffic.document import flag_definition, weight_of, write_disabled
from golive.traffic.flagd import FlagdFileFlag
from golive.traffic.launchdarkly import LaunchDarklyFlag, api_token_from


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


def ld_flag(percent: int, *, on: bool = True, version: int = 7) -> dict[str, object]:
    """The REST shape of the flag: rule 0's rollout on variations 0 (true) and 1."""
    rollout = {
        "variations": [
            {"variation": 0, "weight": percent * 1000},
            {"variation": 1, "weight": (100 - percent) * 1000},
        ]
    }
    return {
        "key": FLAG_KEY,
        "variations": [{"value": True}, {"value": False}],
        "environments": {
            "production": {"on": on, "version": version, "rules": [{"rollout": rollout}]}
        },
    }


class FakeLaunchDarkly:
    """Answers in turn from ``answers`` (a status, an exception, or None: the flag as it is);
    a PATCH that is answered 200 moves the flag to the weight asked for."""

    def __init__(self, *answers: object, percent: int = 0, on: bool = False) -> None:
        self.answers = list(answers)
        self.flag = ld_flag(percent, on=on)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if self.answers else None
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, httpx.Response):
            return answer
        if request.method == "PATCH":
            weight = json.loads(request.content)["patch"][0]["value"] // 1000
            version = self.flag["environments"]["production"]["version"] + 1  # type: ignore[index]
            self.flag = ld_flag(weight, version=version)
        return httpx.Response(200, json=self.flag)

    def ld(self, **options: object) -> LaunchDarklyFlag:
        self.sleeps: list[float] = []
        return LaunchDarklyFlag(
            api_token="api-secret-1",
            transport=httpx.MockTransport(self),
            sleep=self.sleeps.append,
            **options,  # type: ignore[arg-type]
        )


def test_launchdarkly_patch_is_the_story_s_and_turns_the_flag_on() -> None:
    fake = FakeLaunchDarkly()
    flag = fake.ld()
    flag.set_weight(10)
    patch, read = fake.requests
    assert patch.method == "PATCH" and read.method == "GET"
    assert patch.url.path == "/api/v2/flags/production/new-credit-assessment-enabled"
    assert read.url.params["env"] == "production"
    assert patch.headers["Authorization"] == "api-secret-1"
    body = json.loads(patch.content)
    assert body["patch"] == [
        {
            "op": "replace",
            "path": "/environments/production/rules/0/rollout/variations/0/weight",
            "value": 10000,
        },
        {
            "op": "replace",
            "path": "/environments/production/rules/0/rollout/variations/1/weight",
            "value": 90000,
        },
        {"op": "replace", "path": "/environments/production/on", "value": True},
    ]
    assert flag.weight() == 10
    fallthrough = LaunchDarklyFlag(api_token="k", rule=None, complement_variation=None)
    paths = [op["path"] for op in fallthrough.patch_body(50)["patch"]]
    assert paths == [
        "/environments/production/fallthrough/rollout/variations/0/weight",
        "/environments/production/on",
    ]
    assert "api-secret-1" not in repr(flag)


def test_launchdarkly_weight_is_zero_while_the_flag_is_off() -> None:
    fake = FakeLaunchDarkly(percent=50, on=False)
    assert fake.ld().weight() == 0


@pytest.mark.parametrize(
    ("status", "error", "says"),
    [
        (401, CredentialError, "refused the API token (401"),
        (403, CredentialError, "may not PATCH flag production/"),
        (404, TrafficFlagError, "has no flag production/new-credit-assessment-enabled"),
        (409, TrafficFlagError, "as a conflict (409"),
        (400, TrafficFlagError, "refused the patch of flag"),
    ],
)
def test_launchdarkly_refusals_are_named_and_never_show_the_token(status, error, says) -> None:
    refusal = httpx.Response(status, json={"message": "said by LaunchDarkly"})
    fake = FakeLaunchDarkly(refusal)
    with pytest.raises(error) as caught:
        fake.ld().set_weight(50)
    assert says in caught.value.message
    assert "api-secret-1" not in f"{caught.value.message} {caught.value.hint}"
    assert len(fake.requests) == 1 and fake.sleeps == []  # a refusal is not retried


def test_launchdarkly_rate_limits_wait_their_retry_after_within_the_bound() -> None:
    fake = FakeLaunchDarkly(
        httpx.Response(429, headers={"Retry-After": "3"}),
        httpx.Response(429, headers={"Retry-After": "600"}),
    )
    flag = fake.ld(max_retry_after_s=20)
    flag.set_weight(50)
    assert fake.sleeps == [3.0, 20.0]
    assert [r.method for r in fake.requests] == ["PATCH", "PATCH", "PATCH", "GET"]


def test_launchdarkly_server_errors_are_retried_a_bounded_number_of_times() -> None:
    fake = FakeLaunchDarkly(httpx.Response(503), httpx.Response(500), httpx.Response(502))
    with pytest.raises(TrafficFlagError) as caught:
        fake.ld(attempts=3).set_weight(10)
    assert "answered 502 3 times" in caught.value.message
    assert "unchanged at 0%" in caught.value.message  # read after: nothing was applied
    assert [r.method for r in fake.requests] == ["PATCH", "PATCH", "PATCH", "GET"]
    assert len(fake.sleeps) == 2


def test_launchdarkly_a_patch_applied_but_unanswered_stands() -> None:
    class AppliedThenLost(FakeLaunchDarkly):
        def __call__(self, request: httpx.Request) -> httpx.Response:
            answer = super().__call__(request)
            if request.method == "PATCH":
                raise httpx.ReadTimeout("lost", request=request)
            return answer

    fake = AppliedThenLost()
    flag = fake.ld(attempts=1)
    flag.set_weight(10)
    assert flag.weight() == 10


def test_launchdarkly_a_weight_changed_meanwhile_is_an_error() -> None:
    fake = FakeLaunchDarkly(None, httpx.Response(200, json=ld_flag(30)))
    with pytest.raises(TrafficFlagError, match="reads back 30%"):
        fake.ld().set_weight(10)


def test_launchdarkly_flag_set_names_each_flag_s_share() -> None:
    other = ld_flag(25) | {"key": "instant-payouts"}
    off = ld_flag(80, on=False) | {"key": "dark-mode"}
    listing = httpx.Response(200, json={"items": [ld_flag(0), other, off]})
    fake = FakeLaunchDarkly(listing)
    assert fake.ld().stored_weights() == {FLAG_KEY: 0, "instant-payouts": 25, "dark-mode": 0}
    assert fake.requests[0].url.path == "/api/v2/flags/production"


def test_api_token_from_the_plan_s_variable_or_its_file(tmp_path: Path) -> None:
    assert api_token_from("LD_TOKEN", {"LD_TOKEN": "a "}) == "a"
    token_file = tmp_path / "token"
    token_file.write_text("from-file\n")
    assert api_token_from("LD_TOKEN", {"LD_TOKEN_FILE": str(token_file)}) == "from-file"
    assert api_token_from("LD_TOKEN", {}, fallback=token_file) == "from-file"
    with pytest.raises(CredentialError, match="LD_TOKEN and LD_TOKEN_FILE are unset"):
        api_token_from("LD_TOKEN", {}, fallback=tmp_path / "absent")
    with pytest.raises(CredentialError, match="cannot read the LaunchDarkly API token file"):
        api_token_from("LD_TOKEN", {"LD_TOKEN_FILE": str(tmp_path / "absent")})


def test_launchdarkly_flag_set_is_read_page_by_page(monkeypatch) -> None:
    from golive.traffic import launchdarkly

    monkeypatch.setattr(launchdarkly, "PAGE", 2)
    flags = [ld_flag(0) | {"key": f"flag-{n}"} for n in range(5)]
    flags[3] = ld_flag(40) | {"key": "flag-3"}
    offsets: list[int] = []

    def listing(request: httpx.Request) -> httpx.Response:
        offset, limit = int(request.url.params["offset"]), int(request.url.params["limit"])
        offsets.append(offset)
        return httpx.Response(
            200, json={"items": flags[offset : offset + limit], "totalCount": len(flags)}
        )

    flag = LaunchDarklyFlag(api_token="k", transport=httpx.MockTransport(listing))
    assert flag.stored_weights() == {f"flag-{n}": 40 if n == 3 else 0 for n in range(5)}
    assert offsets == [0, 2, 4]
