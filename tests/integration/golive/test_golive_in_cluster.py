"""golive's in-cluster parts against the test cluster's API front (authentication, RBAC, Leases;
no pods): the preflight's permission check, the Lease (a dead holder, a live one, two runners at
once, a Lease lost), the control ConfigMap, and a state directory that fills up mid-run.

The whole Job, killed twice and resumed, is tests/e2e/test_golive_production.py.
"""

from __future__ import annotations

import copy
import os
import resource
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from golive.errors import ControlRequestError, GoLiveBusyError, LeaseLost
from golive.manifests import render
from golive.plan import parse
from golive.targets.kubeapi import KubernetesApi, ServiceAccount
from golive.targets.kubecontrol import ConfigMapControl
from golive.targets.kubelease import RunLease, micro_time
from golive.targets.kubernetes import KubernetesTarget
from tests.integration.golive.kube_api import ApiFront
from tests.integration.golive.kube_cluster import NAMESPACE, Cluster, seed_blue_green

pytest.importorskip("kmock")

REPO = Path(__file__).resolve().parents[3]
GOLIVE = REPO / "deploy/k8s/golive-production"
USER = f"system:serviceaccount:{NAMESPACE}:golive"
GROUPS = ("system:serviceaccounts", f"system:serviceaccounts:{NAMESPACE}", "system:authenticated")


class Front:
    """kmock, the API front before it, and golive's objects of deploy/k8s/golive applied."""

    def __init__(self, cluster: Cluster, front: ApiFront) -> None:
        self.cluster, self.front = cluster, front
        self.http = httpx.Client(base_url=front.url, timeout=10)

    def apply_golive(self, role: dict[str, Any] | None = None) -> dict[str, Any]:
        """ServiceAccount, Role (or ``role``), RoleBinding and the control ConfigMap."""
        shipped = {}
        for m in render(GOLIVE):
            if m.kind in ("ServiceAccount", "Role", "RoleBinding"):
                shipped[m.kind] = m.doc
        shipped["Role"] = role or shipped["Role"]
        rbac = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{NAMESPACE}"
        paths = {
            "ServiceAccount": f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts",
            "Role": f"{rbac}/roles",
            "RoleBinding": f"{rbac}/rolebindings",
        }
        for kind, doc in shipped.items():
            self.http.post(paths[kind], json=doc).raise_for_status()
        return shipped["Role"]

    def account(self, tmp_path: Path) -> ServiceAccount:
        token = f"token-{os.urandom(6).hex()}"
        self.front.add_token(token, USER, GROUPS)
        directory = tmp_path / "serviceaccount"
        directory.mkdir(exist_ok=True)
        (directory / "token").write_text(token, encoding="utf-8")
        return ServiceAccount(directory)

    def api(self, tmp_path: Path) -> KubernetesApi:
        return KubernetesApi(self.front.url, NAMESPACE, 10, account=self.account(tmp_path))


@pytest.fixture
def cluster() -> Iterator[Front]:
    with Cluster(discovery=False, history=1000) as store:
        front = ApiFront(store.url)
        front.start()
        try:
            yield Front(store, front)
        finally:
            front.stop()


def _plan(tmp_path: Path, url: str) -> Any:
    data = yaml.safe_load((REPO / "deploy/golive/production.yaml").read_text(encoding="utf-8"))
    data["target"]["state_dir"] = str(tmp_path / "state")
    data["target"]["kubernetes"].update(api_url=url, credentials="in-cluster")
    source = tmp_path / "plan.yaml"
    source.write_text(yaml.safe_dump(data), encoding="utf-8")
    return parse(source.read_text(encoding="utf-8"), str(source))


# --- the preflight's permissions --------------------------------------------------------------


def test_a_role_missing_a_verb_is_named_by_the_preflight_and_nothing_changes(
    cluster: Front, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_blue_green(cluster.cluster)  # through kmock directly: the objects as applied
    shipped = next(m.doc for m in render(GOLIVE) if m.kind == "Role")
    role = copy.deepcopy(shipped)
    for rule in role["rules"]:  # the flag's weight can no longer be patched
        if "credit-assessment-flags" in (rule.get("resourceNames") or []):
            rule["verbs"] = [v for v in rule["verbs"] if v != "patch"]
    cluster.apply_golive(role)
    account = cluster.account(tmp_path)
    monkeypatch.setenv("GOLIVE_SERVICEACCOUNT_DIR", str(account.directory))
    plan = _plan(tmp_path, cluster.front.url)
    target = KubernetesTarget(plan)
    checks = {c.name: c for c in target.preflight()}
    permissions = checks["permissions"]
    assert not permissions.passed
    assert "patch configmaps credit-assessment-flags" in permissions.detail, permissions.detail
    assert "get configmaps credit-assessment-flags" not in permissions.detail
    writes = [r for r in cluster.front.requests(USER) if r.verb not in ("get", "list", "create")]
    assert writes == [], "the preflight changed something"
    reviews = [r for r in cluster.front.requests(USER) if r.verb == "create"]
    assert reviews and {r.resource for r in reviews} == {"selfsubjectaccessreviews"}

    # The Role as shipped: every permission the go-live uses is granted.
    cluster.http.put(
        f"/apis/rbac.authorization.k8s.io/v1/namespaces/{NAMESPACE}/roles/golive",
        json={**shipped, "metadata": {**shipped["metadata"], "namespace": NAMESPACE}},
    ).raise_for_status()
    again = {c.name: c for c in target.preflight()}["permissions"]
    assert again.passed and again.detail.startswith("all "), again.detail


# --- the Lease --------------------------------------------------------------------------------


def _lease(api: KubernetesApi, identity: str) -> RunLease:
    return RunLease(api, "golive", identity, duration_s=2.0, renew_s=0.5, poll_s=0.1)


def test_a_live_holder_turns_a_second_runner_away_naming_it(cluster: Front, tmp_path: Path) -> None:
    cluster.apply_golive()
    api = cluster.api(tmp_path)
    with _lease(api, "golive-abc12/pid-7/aa01").held():
        with pytest.raises(GoLiveBusyError, match=r"held by golive-abc12/pid-7/aa01") as busy:
            _lease(api, "golive-def34/pid-9/bb02").claim()
        assert busy.value.exit_code == 7
    # Released at the end: the next runner takes it at once, from nobody.
    second = _lease(api, "golive-def34/pid-9/bb02").claim()
    assert second.taken_from() is None
    second.release()


def test_a_dead_holders_lease_is_taken_over_after_its_duration(
    cluster: Front, tmp_path: Path
) -> None:
    cluster.apply_golive()
    api = cluster.api(tmp_path)
    dead = _lease(api, "golive-dead1/pid-3/cc03")
    dead.claim()
    dead._stop.set()  # the runner was SIGKILLed: no renewal, no release
    began = time.monotonic()
    heir = _lease(api, "golive-heir1/pid-4/dd04").claim()
    waited = time.monotonic() - began
    assert heir.taken_from() is not None and "golive-dead1/pid-3/cc03" in heir.taken_from()
    assert waited >= 2.0, "taken over before the Lease's duration"
    lease = api.get("leases", "golive")
    assert lease["spec"]["holderIdentity"] == "golive-heir1/pid-4/dd04"
    assert lease["spec"]["leaseTransitions"] == 1
    heir.release()


def test_a_lease_renewed_long_ago_is_taken_over_at_once(cluster: Front, tmp_path: Path) -> None:
    cluster.apply_golive()
    api = cluster.api(tmp_path)
    stale = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "golive", "namespace": NAMESPACE},
        "spec": {
            "holderIdentity": "golive-gone1/pid-1/ee05",
            "leaseDurationSeconds": 2,
            "renewTime": micro_time(time.time() - 3600),
        },
    }
    cluster.http.post(
        f"/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}/leases", json=stale
    ).raise_for_status()
    began = time.monotonic()
    heir = _lease(api, "golive-heir2/pid-5/ff06").claim()
    assert time.monotonic() - began < 2.0
    assert "golive-gone1/pid-1/ee05" in (heir.taken_from() or "")
    heir.release()


def test_two_runners_started_at_once_one_holds_the_lease(cluster: Front, tmp_path: Path) -> None:
    cluster.apply_golive()
    api = cluster.api(tmp_path)
    outcomes: dict[str, str] = {}
    held: list[RunLease] = []
    start = threading.Barrier(2)

    def runner(identity: str) -> None:
        lease = _lease(api, identity)
        start.wait()
        try:
            lease.claim()
        except GoLiveBusyError as exc:
            outcomes[identity] = exc.message
        else:
            outcomes[identity] = "held"
            held.append(lease)

    threads = [threading.Thread(target=runner, args=(f"job-{n}/pid-{n}/0{n}",)) for n in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    try:
        assert sorted(outcomes.values()).count("held") == 1, outcomes
        [winner] = held
        loser = next(i for i, said in outcomes.items() if said != "held")
        assert winner.identity in outcomes[loser]
    finally:
        for lease in held:
            lease.release()


def test_a_runner_whose_lease_was_taken_stops_at_its_next_check(
    cluster: Front, tmp_path: Path
) -> None:
    cluster.apply_golive()
    api = cluster.api(tmp_path)
    lease = _lease(api, "golive-one/pid-1/0a0a").claim()
    try:
        lease.check()
        taken = api.get("leases", "golive")
        taken["spec"]["holderIdentity"] = "golive-other/pid-2/0b0b"
        cluster.http.put(
            f"/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}/leases/golive", json=taken
        ).raise_for_status()
        deadline = time.monotonic() + 5
        with pytest.raises(LeaseLost, match="golive-other/pid-2/0b0b"):
            while time.monotonic() < deadline:
                lease.check()
                time.sleep(0.1)
    finally:
        lease.release()
    assert api.get("leases", "golive")["spec"]["holderIdentity"] == "golive-other/pid-2/0b0b"


# --- the control ConfigMap --------------------------------------------------------------------


def test_operators_requests_and_the_runners_status_never_erase_each_other(
    cluster: Front, tmp_path: Path
) -> None:
    cluster.apply_golive()
    control = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "golive-control"}}
    cluster.http.post(f"/api/v1/namespaces/{NAMESPACE}/configmaps", json=control)
    channel = ConfigMapControl(cluster.api(tmp_path), "golive-control")

    def publish() -> None:
        for n in range(15):
            channel.publish({"run_id": "r1", "step": f"step-{n}"})

    publisher = threading.Thread(target=publish)
    publisher.start()
    channel.write(pause=True, by="Chanda Mwale")
    approval = {"run_id": "r1", "step": "traffic-10", "by": "Chanda Mwale"}
    channel.write(approval=approval)
    publisher.join(60)
    read = channel.read()
    assert read["pause"] is True and read["approval"] == approval and read["by"] == "Chanda Mwale"
    assert (channel.status() or {}).get("step") == "step-14"
    channel.reset()
    assert channel.read() == {
        "by": "an operator",
        "pause": False,
        "rollback": False,
        "approval": None,
    }


def test_a_missing_control_config_map_says_to_apply_the_component(
    cluster: Front, tmp_path: Path
) -> None:
    cluster.apply_golive()
    channel = ConfigMapControl(cluster.api(tmp_path), "golive-control")
    with pytest.raises(ControlRequestError, match="does not exist") as missing:
        channel.read()
    assert "deploy/k8s/golive" in (missing.value.hint or "")


# --- a state directory that fills up ------------------------------------------------------------


def test_a_volume_that_fills_up_stops_the_run_before_the_next_step(tmp_path: Path) -> None:
    """A real limit on the journal's size (RLIMIT_FSIZE, in a child process): the append that
    cannot be written stops the run with exit 23, and the step after it never runs."""
    from golive.runner import Runner
    from golive.steps.base import StepResult
    from golive.targets.fake import FakeTarget
    from tests.unit.golive.test_runner_fake_target import make_plan

    marker = tmp_path / "second-step-ran"

    class Fill:
        def __init__(self, name: str, act: Any) -> None:
            self.name, self.title, self.act = name, f"stand-in {name}", act

        def run(self, ctx: Any) -> StepResult:
            self.act(ctx)
            return StepResult(f"{self.name} done", {"padding": "x" * 3900})

        def undo(self, ctx: Any) -> None:
            return None

        def expected_s(self, plan: Any) -> float:
            return 0

        def manual(self, plan: Any) -> list[str]:
            return []

    plan = make_plan(tmp_path)
    pid = os.fork()
    if pid == 0:  # the child: a volume of ~4 KB for the journal
        code = 1
        try:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
            steps = [
                Fill("preflight", lambda ctx: None),
                Fill("deploy-green", lambda ctx: marker.touch()),
            ]
            Runner(plan, FakeTarget(), steps=steps).run(report=False)
            code = 0
        except BaseException as exc:  # the child reports by its exit code
            code = getattr(exc, "exit_code", 1)
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 23
    assert not marker.exists(), "a step ran after the journal could not be written"
