"""The go-live plan: one YAML file that both `golive run` executes and `golive runbook` renders.

Loading is strict: every mapping forbids unknown keys, and every problem is reported as
``FILE:LINE: field.path: reason`` (the line comes from the YAML node of the field, or of its
parent when the field is missing). Structural rules live in the models (weights strictly
increasing, ending at 100, the two slots on distinct ports, ...). Whether the providers a plan
names exist in this build (target, traffic flag) is a second check,
``golive.providers.check_runnable``: a runbook renders from any well-formed plan, a run needs
the providers.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal, get_args
from zoneinfo import ZoneInfo

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from golive.analysis import Gates as AnalysisGates
from golive.errors import PlanError
from golive.validation.config import ValidationConfig

SlotName = Literal["blue", "green"]
SLOT_NAMES: tuple[SlotName, SlotName] = ("blue", "green")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Release(_Strict):
    version: Annotated[str, Field(min_length=1, max_length=64)]
    image: Annotated[str, Field(min_length=1)]
    previous_version: str | None = None


class Router(_Strict):
    """The local stand-in for the Kubernetes Service: HAProxy on a loopback port."""

    port: Annotated[int, Field(ge=1024, le=65535)] = 8080
    check_interval_ms: Annotated[int, Field(ge=100, le=10_000)] = 1000


class SlotUrls(_Strict):
    blue: str | None = None
    green: str | None = None


class RunLeaseSettings(_Strict):
    """The coordination.k8s.io Lease that keeps one runner at a time on Kubernetes."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")] = "golive"
    # A holder that has not renewed for this long has lost it; renewed every renew_s.
    duration_s: Annotated[float, Field(ge=2, le=3600)] = 30.0
    renew_s: Annotated[float, Field(gt=0, le=1200)] = 10.0

    @model_validator(mode="after")
    def _renews_in_time(self) -> RunLeaseSettings:
        if self.renew_s * 2 > self.duration_s:
            raise ValueError("lease.renew_s must be at most half of lease.duration_s")
        return self


class Kubernetes(_Strict):
    """How the kubernetes target reaches the cluster and names the workloads (docs/golive.md)."""

    # An API server URL, e.g. a `kubectl proxy` already running (no credentials of its own),
    # or the API server a ServiceAccount's token is for. Unset: in a pod, the API server of
    # KUBERNETES_SERVICE_HOST/PORT; elsewhere golive starts `kubectl proxy` itself, with the
    # operator's context and credentials.
    api_url: str | None = None
    # Whose identity golive acts with: "in-cluster" the pod's ServiceAccount token (the file
    # under $GOLIVE_SERVICEACCOUNT_DIR, default /var/run/secrets/kubernetes.io/serviceaccount),
    # "kubectl" the operator's context through kubectl proxy, "auto" the first when that token
    # file exists.
    credentials: Literal["auto", "in-cluster", "kubectl"] = "auto"
    lease: RunLeaseSettings = RunLeaseSettings()
    # Operators' requests (pause, resume, rollback, approve) and the runner's status.
    control_configmap: Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")] = (
        "golive-control"
    )
    context: str | None = None  # the kubectl context for that proxy; unset: the current one
    kubectl: str = "kubectl"
    # The slots' Deployments and Services are `<workload>-blue` and `<workload>-green`.
    workload: Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")] = (
        "credit-assessment"
    )
    container: str = "credit-assessment"
    replicas: Annotated[int, Field(ge=1, le=100)] = 3
    # Where golive reaches each slot; unset: through the API server's service proxy.
    slot_urls: SlotUrls = SlotUrls()
    # The overlay whose objects labelled slot=<slot> deploy a slot (server-side apply), and
    # the one holding the migration Job; relative paths are found from the plan's repository.
    manifests: Path = Path("deploy/k8s/production")
    migration: Path = Path("deploy/k8s/migration")
    poll_s: Annotated[float, Field(gt=0, le=60)] = 2.0
    request_timeout_s: Annotated[float, Field(gt=0, le=120)] = 10.0


class Target(_Strict):
    kind: Literal["local", "kubernetes"]
    state_dir: Path = Path(".data/golive")
    router: Router = Router()
    namespace: Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")] = (
        "credit-assessment"
    )
    service: str = "credit-assessment"
    # Reached by the smoke test of the router (the production Service's address).
    public_url: str | None = None
    kubernetes: Kubernetes = Kubernetes()


class Database(_Strict):
    url_env: str = "DATABASE_URL"
    # The embedded PostgreSQL (local target) when the variable named by url_env is unset.
    embedded_dir: Path | None = None
    name: str = "credit_assessment"
    backup_dir: Path = Path(".data/golive/backups")
    # Headroom asked of the backup disk, as a multiple of the database size.
    backup_headroom: Annotated[float, Field(ge=1.0, le=10.0)] = 2.0
    # The expand migration (a local process, or the cluster's migration Job) gets this long.
    migration_timeout_s: Annotated[float, Field(gt=0, le=86_400)] = 900


AUTH_SOURCES = ("token_env", "token_file", "token_command")


class Auth(_Strict):
    """Where golive gets the bearer token of its own requests (smoke, performance, verify).

    Exactly one of ``token_env``, ``token_file`` or ``token_command``. A fetched token is reused
    for ``refresh_s`` seconds, then fetched again; after a 401 it is fetched again at once.
    """

    token_env: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] | None = None
    token_file: Path | None = None
    # An argv, run without a shell (write ["sh", "-c", "..."] for one); it prints the token.
    token_command: (
        Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)] | None
    ) = None
    refresh_s: Annotated[float, Field(gt=0, le=86_400)] = 300
    command_timeout_s: Annotated[float, Field(gt=0, le=300)] = 30
    # The identity provider's JWKS, as the service fetches it (JWT_JWKS_URL): the preflight
    # checks that it answers and publishes the kid golive's token is signed with.
    jwks_url: Annotated[str, Field(pattern=r"^https?://")] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Auth:
        given = [name for name in AUTH_SOURCES if getattr(self, name) is not None]
        if len(given) != 1:
            found = f" (found {' and '.join(given)})" if given else ""
            raise ValueError(f"give exactly one of {', '.join(AUTH_SOURCES)}{found}")
        return self


class Secrets(_Strict):
    required: list[str] = Field(default_factory=lambda: ["JWT_SECRET"])


class Slot(_Strict):
    port: Annotated[int, Field(ge=1024, le=65535)]
    workers: Annotated[int, Field(ge=1, le=16)] = 2
    version: Annotated[str, Field(min_length=1)]
    env: dict[str, str] = Field(default_factory=dict)


class Slots(_Strict):
    blue: Slot
    green: Slot

    @model_validator(mode="after")
    def _distinct_ports(self) -> Slots:
        if self.blue.port == self.green.port:
            raise ValueError("blue and green must listen on different ports")
        return self

    def of(self, name: SlotName) -> Slot:
        return self.blue if name == "blue" else self.green


class Deploy(_Strict):
    ready_timeout_s: Annotated[float, Field(gt=0, le=3600)] = 60
    drain_s: Annotated[float, Field(ge=0, le=300)] = 2


class SmokeDependency(_Strict):
    """An external service the service calls: its health URL and the answer that proves it."""

    name: Annotated[str, Field(min_length=1, max_length=80)]
    url: Annotated[str, Field(pattern=r"^https?://[^\s/]+")]
    # JSON fields its health answer must carry (e.g. {status: UP}); empty: a 200 is enough.
    expect: dict[str, str] = {}


class Smoke(_Strict):
    client_id: str = "123e4567-e89b-12d3-a456-426614174000"
    loan_amount: Annotated[float, Field(gt=0)] = 50000
    loan_term: Annotated[int, Field(gt=0)] = 12
    # The services the service calls (credit bureau, legacy system); the smoke test demands each
    # one's own health answer. The target adds the ones it started (the rehearsal's emulators).
    dependencies: list[SmokeDependency] = []
    timeout_s: Annotated[float, Field(gt=0, le=120)] = 10


class Slo(_Strict):
    p99_ms: Annotated[float, Field(gt=0)]
    max_error_ratio: Annotated[float, Field(ge=0, le=1)]


class Performance(_Strict):
    rate_per_s: Annotated[float, Field(gt=0, le=5000)]
    duration_s: Annotated[float, Field(gt=0, le=3600)]
    slo: Slo


class Gates(_Strict):
    """Thresholds judged on live figures while traffic dwells on the new release."""

    max_error_ratio: Annotated[float, Field(ge=0, le=1)] = 0.001
    max_p99_ms: Annotated[float, Field(gt=0)] = 500
    # No verdict on fewer requests than this (a quiet minute proves nothing).
    min_requests: Annotated[int, Field(ge=0)] = 50
    interval_s: Annotated[float, Field(gt=0, le=3600)] = 5


class Stage(_Strict):
    weight: Annotated[int, Field(gt=0, le=100)]
    dwell_s: Annotated[float, Field(ge=0)]
    deadline_s: Annotated[float, Field(gt=0)] | None = None
    gates: Gates | None = None
    # manual: once the gates pass at the end of the dwell, the stage waits (still judging) until
    # a person runs `golive approve`; the approval closes this stage, so the next one starts.
    approval: Literal["auto", "manual"] = "auto"

    @model_validator(mode="after")
    def _deadline_after_dwell(self) -> Stage:
        if self.deadline_s is not None and self.deadline_s < self.dwell_s:
            raise ValueError("deadline_s must not be shorter than dwell_s")
        return self


class LaunchDarkly(_Strict):
    """Where the ``launchdarkly`` traffic flag lives, and the API token that may change it."""

    project: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,100}$")] = "production"
    environment: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,100}$")] = "production"
    api_url: Annotated[str, Field(pattern=r"^https?://[^\s/]+")] = "https://app.launchdarkly.com"
    # The variable holding an API access token with a writer role on the flag (or <NAME>_FILE,
    # a mounted secret); list it in secrets.required so the preflight checks it is there.
    api_token_env: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] = (
        "LAUNCHDARKLY_API_TOKEN"  # noqa: S105 - the name of a variable, not a token
    )
    # The targeting rule whose percentage rollout is the weight (the story's rule 0); null: the
    # flag's fallthrough rollout.
    rule: Annotated[int, Field(ge=0, le=1000)] | None = 0
    # A 429 is retried after its Retry-After (at most max_retry_after_s), a 5xx or a lost
    # connection after a back-off; attempts bounds both.
    attempts: Annotated[int, Field(ge=1, le=20)] = 5
    max_retry_after_s: Annotated[float, Field(gt=0, le=600)] = 60
    timeout_s: Annotated[float, Field(gt=0, le=120)] = 10


class Traffic(_Strict):
    """The legacy-to-new split (a feature flag), raised stage by stage."""

    flag_provider: str | None = None
    # The launchdarkly provider's project, environment, API URL and token variable.
    launchdarkly: LaunchDarkly | None = None
    flag_key: str = "new-credit-assessment-enabled"
    stages: list[Stage] = Field(default_factory=list)
    # Every interval_s the stage's window is measured and judged (docs/analysis.md).
    interval_s: Annotated[float, Field(gt=0, le=3600)] = 60
    # How long every serving instance may take to report a new weight.
    verify_timeout_s: Annotated[float, Field(gt=0, le=3600)] = 30
    # The gates of golive.analysis (Gates.from_mapping): error_rate, latency, mismatch, bureau,
    # limits. An absent gate keeps its defaults; null turns it off.
    analysis: dict[str, Any] = Field(default_factory=dict)

    @field_validator("analysis")
    @classmethod
    def _gates(cls, analysis: dict[str, Any]) -> dict[str, Any]:
        AnalysisGates.from_mapping(analysis)  # raises ValueError naming a bad field
        return analysis

    @field_validator("stages")
    @classmethod
    def _ordered(cls, stages: list[Stage]) -> list[Stage]:
        for index in range(1, len(stages)):
            if stages[index].weight <= stages[index - 1].weight:
                raise ValueError(
                    f"weights must increase strictly: stage {index} has {stages[index].weight} "
                    f"after {stages[index - 1].weight}"
                )
        if stages and stages[-1].weight != 100:
            raise ValueError(f"the last stage must reach 100, not {stages[-1].weight}")
        return stages

    @model_validator(mode="after")
    def _provider_named(self) -> Traffic:
        if self.stages and not self.flag_provider:
            raise ValueError("traffic stages need a flag_provider")
        if self.flag_provider == "launchdarkly" and self.launchdarkly is None:
            raise ValueError(
                "flag_provider launchdarkly needs a launchdarkly section: project, environment, "
                "api_url and api_token_env (the variable holding the API token)"
            )
        return self


class Hold(_Strict):
    # Post-deployment monitoring once traffic is on green (the story: 2 hours).
    post_switch_s: Annotated[float, Field(ge=0)] = 7200
    # Blue kept as the rollback after the hold, before it is retired.
    keep_blue_s: Annotated[float, Field(ge=0)] = 0


class Contact(_Strict):
    name: Annotated[str, Field(min_length=1)]
    role: Annotated[str, Field(min_length=1)]
    reach: Annotated[str, Field(min_length=1)]


Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def _hh_mm(text: str, field: str, example: str = "22:00") -> str:
    hours, _, minutes = text.partition(":")
    if not (
        len(hours) == 2
        and len(minutes) == 2
        and hours.isdigit()
        and minutes.isdigit()
        and int(hours) < 24
        and int(minutes) < 60
    ):
        raise ValueError(f"{field} must be a 24-hour time HH:MM such as {example}, not {text!r}")
    return text


class WeeklyWindow(_Strict):
    """A window that recurs: the days it opens on, and local opening and closing times
    (``closes`` at or before ``opens``: it closes the next day)."""

    days: Annotated[list[Weekday], Field(min_length=1)]
    opens: str
    closes: str

    @field_validator("opens", "closes")
    @classmethod
    def _clock(cls, text: str, info: ValidationInfo) -> str:
        return _hh_mm(text, str(info.field_name))


class MaintenanceWindow(_Strict):
    """When the database steps may run (golive.schedule): one scheduled window
    (``start``/``end``), a weekly one, or ``always`` (no window: a rehearsal)."""

    start: datetime | None = None
    end: datetime | None = None
    weekly: WeeklyWindow | None = None
    always: bool = False
    timezone: str = "Africa/Lusaka"

    @model_validator(mode="after")
    def _ordered(self) -> MaintenanceWindow:
        forms = [self.start is not None or self.end is not None, self.weekly is not None]
        forms.append(self.always)
        if sum(forms) != 1:
            raise ValueError(
                "give exactly one of start and end, weekly: {days, opens, closes}, or always: true"
            )
        if forms[0]:
            if self.start is None or self.end is None:
                raise ValueError("a scheduled window needs both start and end")
            zone = ZoneInfo(known_zone(self.timezone))
            start = self.start if self.start.tzinfo else self.start.replace(tzinfo=zone)
            end = self.end if self.end.tzinfo else self.end.replace(tzinfo=zone)
            if end <= start:
                raise ValueError("end must be after start")
        return self


class ChecklistItem(_Strict):
    # Every item of a plan's checklist is required (a failure stops the preflight) unless
    # the plan says `required: false` (then it is checked and reported, never blocking).
    required: bool = True


class SecurityScanItem(ChecklistItem):
    # `make audit` writes <summaries>/<version>/summary.json (golive.security).
    summaries: Path = Path(".data/audit")
    max_age_days: Annotated[int, Field(ge=0, le=365)] = 7


class StagingTestsItem(ChecklistItem):
    # The staging suite's JUnit XML for this release; {version} is the release version.
    junit: str = ".data/staging/{version}/junit.xml"


class RollbackTestedItem(ChecklistItem):
    # The state directory of the rehearsals (`golive history --state-dir`); none: the plan's.
    state_dir: Path | None = None


class OncallNotifiedItem(ChecklistItem):
    # The notify target the on-call team reads; the run's start must be delivered to it.
    target: Annotated[str, Field(min_length=1)] = "oncall"
    # How long the preflight waits for the delivery (the notification is sent beside it).
    within_s: Annotated[float, Field(ge=0, le=600)] = 60.0


class Checklist(_Strict):
    """The pre-deployment checklist, each item checked by the preflight with its evidence
    (golive.checklist). The maintenance window is enforced by the database steps."""

    security_scan: SecurityScanItem = SecurityScanItem()
    staging_tests: StagingTestsItem = StagingTestsItem()
    rollback_tested: RollbackTestedItem = RollbackTestedItem()
    oncall_notified: OncallNotifiedItem = OncallNotifiedItem()


class Review(_Strict):
    """The post-go-live review meeting the review pack invites to (``review.ics``)."""

    # Business days after the run finished (0: the same day, or the next weekday).
    after_business_days: Annotated[int, Field(ge=0, le=20)] = 1
    at: str = "10:00"  # local time, 24-hour HH:MM
    duration_min: Annotated[int, Field(ge=15, le=480)] = 60
    location: Annotated[str, Field(max_length=200)] = ""
    # An IANA zone (Africa/Lusaka); none: the maintenance window's.
    timezone: str | None = None

    @field_validator("at")
    @classmethod
    def _clock(cls, at: str) -> str:
        return _hh_mm(at, "at", "10:00")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, zone: str | None) -> str | None:
        if zone is not None:
            known_zone(zone)
        return zone


def known_zone(zone: str) -> str:
    """``zone`` when it names an IANA time zone; a ValueError that says so otherwise."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"unknown time zone {zone!r} (an IANA name such as Africa/Lusaka)"
        ) from exc
    return zone


class Rehearsal(_Strict):
    """``golive rehearse`` only: the stand-in data and the background load through the router."""

    clients: Annotated[int, Field(ge=1, le=100_000)] = 2000
    # 150 requests/s keep two cores about 40% busy in steady state (service, router, database,
    # emulators and the generator), which leaves room for what the go-live itself starts.
    background_rate_per_s: Annotated[float, Field(gt=0, le=2000)] = 150
    # The load rises to that rate over this many seconds, and the go-live starts once every
    # seeded client has been assessed once: blue stands in for a warm, long-running release.
    background_ramp_s: Annotated[float, Field(ge=0, le=300)] = 20
    # Zero downtime includes latency: the p99 of every 10 s window of the background load, from
    # each request's scheduled start, must stay at or under this.
    max_window_p99_ms: Annotated[float, Field(gt=0, le=60_000)] = 1000
    # Start Prometheus (and Alertmanager) on loopback when installed, scraping both slots.
    monitoring: bool = True
    # A fresh rehearsal database starts at the previous release's schema, so the go-live has a
    # real expand migration to back up, clone-test, apply and verify (blue must be told it is the
    # previous release: MIGRATE_ON_START=false, EXPECTED_SCHEMA_REVISION=<this>).
    previous_schema_revision: str | None = None


class Exporter(_Strict):
    """Where golive serves its own metrics while a run goes on (docs/monitoring.md)."""

    # 127.0.0.1: scraped from this machine only; 0.0.0.0 inside a pod (the PodMonitor's port).
    host: Annotated[str, Field(min_length=1)] = "127.0.0.1"
    # 0: any free port (the bound address is journaled as exporter_started and written for
    # Prometheus' file-based discovery in <state_dir>/exporter/targets.json).
    port: Annotated[int, Field(ge=0, le=65535)] = 9464


class Monitoring(_Strict):
    prometheus_url: str | None = None
    grafana_url: str | None = None
    alertmanager_url: str | None = None
    # golive's metrics endpoint, on by default; null turns it off (GoLiveStageOverdue and
    # GoLiveBackupTooOld then have nothing to read).
    exporter: Exporter | None = Exporter()


# What a notification target can be sent (docs/golive.md#notifications).
NotifyEvent = Literal[
    "run_started",
    "run_finished",
    "step_failed",
    "gate_failed",
    "inconclusive",
    "approval_needed",
    "rollback_started",
    "rollback_finished",
    "operator_action",
    "maintenance_started",
]
NOTIFY_EVENTS: tuple[str, ...] = get_args(NotifyEvent)


class NotifyTarget(_Strict):
    """Where notifications go: an Apprise URL (``kind: apprise``) or a status page webhook
    (``kind: status_page``, a JSON POST). A URL that carries a token is never written in the
    plan: ``url_env`` names the variable (or ``<NAME>_FILE``, a mounted Secret) holding it."""

    name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
    kind: Literal["apprise", "status_page"] = "apprise"
    url: Annotated[str, Field(min_length=1)] | None = None
    url_env: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] | None = None
    # Empty: every event (a status page: the ones that change its status).
    events: list[NotifyEvent] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_url(self) -> NotifyTarget:
        if (self.url is None) == (self.url_env is None):
            raise ValueError("give exactly one of url, url_env")
        if self.url is not None and "@" in self.url.split("://", 1)[-1].split("/", 1)[0]:
            raise ValueError("url carries credentials: put it in a secret and name it in url_env")
        return self


class Notify(_Strict):
    """Notifications to people and the status page, sent beside the steps, never blocking them."""

    targets: list[NotifyTarget] = Field(default_factory=list)
    # Failed deliveries are tried again after backoff_s, doubling up to max_backoff_s, at most
    # `attempts` times in all; then counted as failed (journal, report, live page).
    attempts: Annotated[int, Field(ge=1, le=20)] = 6
    backoff_s: Annotated[float, Field(gt=0, le=600)] = 1.0
    max_backoff_s: Annotated[float, Field(gt=0, le=3600)] = 60.0
    timeout_s: Annotated[float, Field(gt=0, le=120)] = 10.0
    # At the end of the run golive waits this long at most for messages still being sent.
    drain_s: Annotated[float, Field(ge=0, le=600)] = 15.0
    # The live page as the people notified reach it (e.g. through kubectl port-forward);
    # default: the exporter's own address.
    link: str | None = None

    @field_validator("targets")
    @classmethod
    def _distinct(cls, targets: list[NotifyTarget]) -> list[NotifyTarget]:
        names = [t.name for t in targets]
        if len(names) != len(set(names)):
            raise ValueError("target names must be distinct")
        return targets


class PlanValidation(ValidationConfig):
    """The ``validate`` step: the validation config (docs/validation.md) plus whether it gates."""

    # True: a failed validation (flagged segment or anomaly, or an unexplained mismatch whose
    # lower bound is above gate_tolerance) fails the go-live. False: reported only.
    gate: bool = False
    gate_tolerance: Annotated[float, Field(ge=0, le=1)] = 0.05


class Plan(_Strict):
    name: Annotated[str, Field(min_length=1)]
    release: Release
    target: Target
    # None: tokens minted with the service's own CLI, which only the local target allows.
    auth: Auth | None = Field(default=None, validate_default=True)
    database: Database = Database()
    secrets: Secrets = Secrets()
    slots: Slots
    deploy: Deploy = Deploy()
    smoke: Smoke = Smoke()
    performance: Performance
    gates: Gates = Gates()
    traffic: Traffic = Traffic()
    hold: Hold = Hold()
    rollback_drill: bool = False
    escalation: Annotated[list[Contact], Field(min_length=1)]
    maintenance_window: MaintenanceWindow
    review: Review = Review()
    monitoring: Monitoring = Monitoring()
    rehearsal: Rehearsal = Rehearsal()
    validation: PlanValidation = PlanValidation()
    notify: Notify = Notify()
    # None: no checklist is checked (the runbook lists the items as text).
    checklist: Checklist | None = None
    _source: Path = PrivateAttr(default=Path("<plan>"))
    _bases: tuple[Path, ...] = PrivateAttr(default=())

    @property
    def source(self) -> Path:
        """Where the plan was read from."""
        return self._source

    @property
    def sources(self) -> tuple[Path, ...]:
        """Every file the plan was built from: the plans it extends, then itself."""
        return (*self._bases, self._source)

    def slot_address(self, slot: SlotName) -> str:
        """Where an operator reaches a slot directly, for the runbook's commands."""
        if self.target.kind == "kubernetes":
            given: str | None = getattr(self.target.kubernetes.slot_urls, slot)
            workload = self.target.kubernetes.workload
            return given or f"http://{workload}-{slot}.{self.target.namespace}.svc"
        return f"http://127.0.0.1:{self.slots.of(slot).port}"

    @field_validator("auth")
    @classmethod
    def _auth_for_the_target(cls, auth: Auth | None, info: ValidationInfo) -> Auth | None:
        target = info.data.get("target")
        if auth is None and target is not None and target.kind == "kubernetes":
            raise ValueError(
                "a kubernetes plan needs an auth section with one of token_env: NAME, "
                "token_file: PATH or token_command: [argv...] (the pods accept the identity "
                "provider's tokens; minting with the service's CLI is for the local target only)"
            )
        return auth

    @model_validator(mode="after")
    def _green_is_the_release(self) -> Plan:
        if self.slots.green.version != self.release.version:
            raise ValueError(
                f"slots.green.version ({self.slots.green.version}) must be the release version "
                f"({self.release.version})"
            )
        return self

    @model_validator(mode="after")
    def _kubernetes_judges_through_prometheus(self) -> Plan:
        # Behind a load-balanced URL every scrape lands on one pod of many: counter deltas
        # from it are noise. On Kubernetes the gates read a Prometheus that scrapes every pod.
        if self.target.kind == "kubernetes" and not self.monitoring.prometheus_url:
            raise ValueError(
                "a kubernetes plan needs monitoring.prometheus_url: the gates sum every pod's "
                "figures through Prometheus and never scrape through a load-balanced URL"
            )
        return self

    @model_validator(mode="after")
    def _oncall_is_a_target(self) -> Plan:
        if self.checklist is not None and self.checklist.oncall_notified.required:
            wanted = self.checklist.oncall_notified.target
            if wanted not in {t.name for t in self.notify.targets}:
                raise ValueError(
                    f"checklist.oncall_notified.target {wanted!r} is not one of notify.targets"
                )
        return self

    @model_validator(mode="after")
    def _review_zone(self) -> Plan:
        if self.review.timezone is None:
            try:
                known_zone(self.maintenance_window.timezone)
            except ValueError as exc:
                raise ValueError(
                    f"review.timezone is not set and maintenance_window.timezone: {exc}"
                ) from exc
        return self

    @property
    def review_timezone(self) -> str:
        return self.review.timezone or self.maintenance_window.timezone

    @property
    def state_dir(self) -> Path:
        return self.target.state_dir

    def gates_for(self, stage: Stage | None) -> Gates:
        return stage.gates if stage is not None and stage.gates is not None else self.gates


# --- loading with line numbers ----------------------------------------------------------------


def line_of(node: yaml.Node | None, loc: tuple[int | str, ...]) -> int:
    """The 1-based line of the node at ``loc`` (or of the deepest ancestor that exists)."""
    line = node.start_mark.line + 1 if node is not None else 1
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            found = next((v for k, v in node.value if k.value == key), None)
            if found is None:
                return line
            node = found
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int):
            if key >= len(node.value):
                return line
            node = node.value[key]
        else:
            return line
        line = node.start_mark.line + 1
    return line


def _path(loc: tuple[int | str, ...]) -> str:
    text = ""
    for key in loc:
        text += f"[{key}]" if isinstance(key, int) else (f".{key}" if text else str(key))
    return text or "(top level)"


def _problems(source: str, root: yaml.Node | None, exc: ValidationError) -> list[str]:
    problems = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key (not part of the plan format)"
        problems.append(f"{source}:{line_of(root, loc)}: {_path(loc)}: {message}")
    return problems


EXTENDS = "extends"
MAX_EXTENDS = 5


def merge(base: Any, override: Any) -> Any:
    """``override`` laid over ``base``: mappings merge key by key; a list of mappings over a list
    of mappings of the same length merges item by item (``stages[1].dwell_s`` alone); anything
    else is replaced."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = merge(base[key], value) if key in base else value
        return merged
    if (
        isinstance(base, list)
        and isinstance(override, list)
        and len(base) == len(override)
        and all(isinstance(item, dict) for item in [*base, *override])
    ):
        return [merge(b, o) for b, o in zip(base, override, strict=True)]
    return override


def _compose(text: str, source: str) -> tuple[yaml.Node | None, Any]:
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader), yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        raise PlanError([f"{source}:{line}: not valid YAML: {exc}"]) from exc


def _has(node: yaml.Node | None, loc: tuple[int | str, ...]) -> bool:
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == key), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        else:
            return False
        if node is None:
            return False
    return True


def parse(text: str, source: str = "<plan>") -> Plan:
    """Validate plan text; PlanError names the file, the line and the field of every problem.

    A plan may start with ``extends: PATH`` (relative to its own file): the plan at PATH, with
    this file's keys laid over it (``merge``) -- an override that compresses the timings of a
    shipped plan for a test, for example, without a copy of it.
    """
    root, data = _compose(text, source)
    if not isinstance(data, dict):
        raise PlanError([f"{source}:1: (top level): the plan must be a mapping"])
    layers = [(source, root)]
    bases: list[Path] = []
    while EXTENDS in data:
        base_path = Path(str(data.pop(EXTENDS)))
        if not base_path.is_absolute():
            base_path = Path(layers[-1][0]).parent / base_path
        if len(bases) >= MAX_EXTENDS or base_path in bases:
            raise PlanError([f"{source}:1: extends: a cycle, or more than {MAX_EXTENDS} levels"])
        try:
            base_text = base_path.read_text(encoding="utf-8")
        except OSError as exc:
            line = line_of(layers[-1][1], (EXTENDS,))
            raise PlanError(
                [f"{layers[-1][0]}:{line}: extends: {base_path} cannot be read: {exc.strerror}"]
            ) from exc
        base_root, base_data = _compose(base_text, str(base_path))
        if not isinstance(base_data, dict):
            raise PlanError([f"{base_path}:1: (top level): the plan must be a mapping"])
        bases.insert(0, base_path)
        layers.append((str(base_path), base_root))
        data = merge(base_data, data)
    try:
        plan = Plan.model_validate(data)
    except ValidationError as exc:
        raise PlanError(_layered_problems(layers, exc)) from exc
    plan._source = Path(source)
    plan._bases = tuple(bases)
    return plan


def _layered_problems(
    layers: list[tuple[str, yaml.Node | None]], exc: ValidationError
) -> list[str]:
    """Each problem at the line of the file that set the field (the override, else a base)."""
    if len(layers) == 1:
        return _problems(layers[0][0], layers[0][1], exc)
    problems = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        where, node = next(((s, n) for s, n in layers if _has(n, loc)), layers[-1])
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key (not part of the plan format)"
        problems.append(f"{where}:{line_of(node, loc)}: {_path(loc)}: {message}")
    return problems


def load(path: Path | str) -> Plan:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PlanError([f"{path}: cannot be read: {exc.strerror}"]) from exc
    return parse(text, str(path))
