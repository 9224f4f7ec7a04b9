"""Delivery of notices beside the steps: never blocking them, at most once per target.

Each target has a thread and a queue of its own, fed by a journal listener (which only folds the
record and enqueues: it never waits on the network), so a target that is slow or down delays
neither the steps nor the other targets. A failed attempt is tried again after
``backoff_s``, doubling up to ``max_backoff_s``, ``attempts`` times in all; then the notice is
journaled as failed and counted (report, live page). golive never fails for a notification.

At most once per (notice, target), across crashes and resumes — the journal says:

- ``notification_sending`` (id, target) is on disk before the first attempt;
- ``notification_sent`` after the target accepted it, ``notification_failed`` when golive gave up.

On a start or a resume, every notice of the journal is derived again (``golive.notify.messages``
gives the same ids) and a pair is sent only when the journal has no ``notification_sending``
for it. A pair with ``sending`` and neither ``sent`` nor ``failed`` was in flight when golive
died: it may or may not have arrived, and it is **not** sent again; it is journaled once as
``notification_unconfirmed`` and reported as "possibly not delivered". Retries inside one process
may repeat a message a target received but answered with an error (or too late): the at-most-once
promise is about crashes, the target's answer is what golive goes by.

URLs are never journaled, logged or put in an error: a target is named by its ``name``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from golive import journal as j
from golive.notify.messages import Links, Notice, NoticeFold
from golive.plan import Notify, NotifyTarget, Plan

SENDING = "notification_sending"
SENT = "notification_sent"
FAILED = "notification_failed"
UNCONFIRMED = "notification_unconfirmed"
TARGET_OFF = "notification_target_off"  # its URL could not be read: nothing is sent to it
STATUS_PAGE_KINDS = ("maintenance_started", "rollback_started", "rollback_finished", "run_finished")


class DeliveryError(Exception):
    """The target did not accept the notice (the message names the target, never its URL)."""


class Channel(Protocol):
    name: str

    def wants(self, notice: Notice) -> bool: ...

    def send(self, notice: Notice) -> None: ...


def backoff_schedule(attempts: int, backoff_s: float, max_backoff_s: float) -> list[float]:
    """The waits before the 2nd, 3rd, ... attempt: doubling from ``backoff_s``, capped."""
    return [min(backoff_s * 2**n, max_backoff_s) for n in range(max(0, attempts - 1))]


def resolve_url(target: NotifyTarget, environ: dict[str, str] | None = None) -> str:
    """The target's URL: in the plan, or from its secret (``url_env`` or ``<url_env>_FILE``)."""
    env = os.environ if environ is None else environ
    if target.url is not None:
        return target.url
    name = str(target.url_env)
    if env.get(name):
        return env[name].strip()
    path = env.get(f"{name}_FILE")
    if path:
        with contextlib.suppress(OSError):
            text = Path(path).read_text(encoding="utf-8").strip()
            if text:
                return text
    raise DeliveryError(f"notify target {target.name}: {name} (or {name}_FILE) is not set")


def _mask(text: str, secret: str, name: str) -> str:
    return text.replace(secret, f"<{name} url>") if secret else text


@dataclass
class AppriseChannel:
    """Slack, Teams, e-mail, PagerDuty, Matrix, JSON webhooks...: any Apprise URL."""

    name: str
    url: str
    events: list[str]
    timeout_s: float = 10.0

    def wants(self, notice: Notice) -> bool:
        return not self.events or notice.kind in self.events

    def send(self, notice: Notice) -> None:
        import apprise

        # Apprise masks credentials in what it logs, but its debug lines show payloads and
        # hosts: never below WARNING, whatever the root logger says.
        logging.getLogger("apprise").setLevel(max(logging.WARNING, logging.root.level))
        sender = apprise.Apprise(asset=apprise.AppriseAsset(async_mode=False))
        if not sender.add(self.url):
            raise DeliveryError(f"notify target {self.name}: Apprise does not read its URL")
        for server in sender:
            with contextlib.suppress(AttributeError):
                server.socket_read_timeout = self.timeout_s
                server.socket_connect_timeout = self.timeout_s
        try:
            ok = sender.notify(title=notice.title, body=notice.body, notify_type=notice.severity)
        except Exception as exc:  # noqa: BLE001 - any failure is one failed attempt
            raise DeliveryError(
                f"notify target {self.name}: {_mask(str(exc), self.url, self.name)}"
            ) from None
        if not ok:
            raise DeliveryError(f"notify target {self.name}: the service did not accept it")


@dataclass
class StatusPageChannel:
    """A generic status page webhook: POST of ``{"status", "release", "message", "run_id"}``."""

    name: str
    url: str
    events: list[str]
    release: str
    run_id: str
    timeout_s: float = 10.0

    def wants(self, notice: Notice) -> bool:
        if notice.status is None:
            return False
        return notice.kind in (self.events or STATUS_PAGE_KINDS)

    def body(self, notice: Notice) -> dict[str, Any]:
        return {
            "status": notice.status,
            "release": self.release,
            "message": notice.title,
            "run_id": self.run_id,
        }

    def send(self, notice: Notice) -> None:
        import httpx

        try:
            answer = httpx.post(self.url, json=self.body(notice), timeout=self.timeout_s)
        except httpx.HTTPError as exc:
            raise DeliveryError(
                f"notify target {self.name}: {type(exc).__name__}: "
                + _mask(str(exc), self.url, self.name)
            ) from None
        if answer.status_code >= 300:
            raise DeliveryError(f"notify target {self.name}: answered {answer.status_code}")


def channels(plan: Plan, run_id: str) -> tuple[list[Channel], list[tuple[str, str]]]:
    """The plan's targets as channels; the targets whose URL cannot be read, with why."""
    made: list[Channel] = []
    problems = []
    settings = plan.notify
    for target in settings.targets:
        try:
            url = resolve_url(target)
        except DeliveryError as exc:
            problems.append((target.name, str(exc)))
            continue
        events = [str(event) for event in target.events]
        if target.kind == "status_page":
            made.append(
                StatusPageChannel(
                    target.name, url, events, plan.release.version, run_id, settings.timeout_s
                )
            )
        else:
            made.append(AppriseChannel(target.name, url, events, settings.timeout_s))
    return made, problems


# --- the bookkeeping (pure) ----------------------------------------------------------------


@dataclass
class Ledger:
    """What the journal says of each (notice id, target)."""

    sending: set[tuple[str, str]] = field(default_factory=set)
    sent: set[tuple[str, str]] = field(default_factory=set)
    failed: set[tuple[str, str]] = field(default_factory=set)
    unconfirmed: set[tuple[str, str]] = field(default_factory=set)
    retries: int = 0

    @classmethod
    def fold(cls, events: list[dict[str, Any]]) -> Ledger:
        ledger = cls()
        books = {SENDING: ledger.sending, SENT: ledger.sent, FAILED: ledger.failed}
        books[UNCONFIRMED] = ledger.unconfirmed
        for e in events:
            book = books.get(str(e.get("event")))
            if book is not None:
                book.add((str(e.get("id")), str(e.get("target"))))
            if e.get("event") in (SENT, FAILED):
                ledger.retries += max(0, int(e.get("attempts", 1)) - 1)
        return ledger

    def due(self, pair: tuple[str, str]) -> bool:
        """Never tried: send it."""
        return pair not in self.sending

    def in_doubt(self, pair: tuple[str, str]) -> bool:
        """Tried by a golive that died before knowing: not sent again."""
        return pair in self.sending and pair not in self.sent and pair not in self.failed


# --- the threads ---------------------------------------------------------------------------


class _Worker:
    def __init__(self, channel: Channel, journal: j.Journal, settings: Notify) -> None:
        self.channel = channel
        self.journal = journal
        self.waits = backoff_schedule(settings.attempts, settings.backoff_s, settings.max_backoff_s)
        self.queue: queue.Queue[Notice | None] = queue.Queue()
        self.stopping = threading.Event()
        self.thread = threading.Thread(
            target=self._loop, name=f"notify-{channel.name}", daemon=True
        )

    def _loop(self) -> None:
        while True:
            notice = self.queue.get()
            if notice is None:
                return
            self._deliver(notice)

    def _deliver(self, notice: Notice) -> None:
        name = self.channel.name
        self.journal.append(SENDING, id=notice.id, target=name, kind=notice.kind)
        error = ""
        for attempt in range(1, len(self.waits) + 2):
            try:
                self.channel.send(notice)
            except DeliveryError as exc:
                error = str(exc)
            except Exception as exc:  # noqa: BLE001 - a notification never stops a go-live
                error = f"notify target {name}: {type(exc).__name__}"
            else:
                self.journal.append(SENT, id=notice.id, target=name, attempts=attempt)
                return
            if attempt > len(self.waits) or self.stopping.wait(self.waits[attempt - 1]):
                break
        self.journal.append(
            FAILED, id=notice.id, target=name, kind=notice.kind, attempts=attempt, error=error
        )


class Dispatcher:
    """Follows a run's journal and delivers its notices to the plan's targets."""

    def __init__(self, plan: Plan, journal: j.Journal, links: Links, chans: list[Channel]) -> None:
        self.settings = plan.notify
        self.journal = journal
        self.fold = NoticeFold(links)
        self.workers = [_Worker(c, journal, self.settings) for c in chans]
        self.lock = threading.Lock()
        self._unsubscribe: Callable[[], None] | None = None

    def start(self) -> Dispatcher:
        """Derive the journal's notices so far, queue the ones never tried, then follow it."""
        events = self.journal.events()
        ledger = Ledger.fold(events)
        with self.lock:
            for event in events:
                for notice in self.fold.apply(event):
                    self._route(notice, ledger)
            self._unsubscribe = self.journal.subscribe(self._observe)
        for worker in self.workers:
            worker.thread.start()
        return self

    def _route(self, notice: Notice, ledger: Ledger | None = None) -> None:
        for worker in self.workers:
            if not worker.channel.wants(notice):
                continue
            pair = (notice.id, worker.channel.name)
            if ledger is not None and ledger.in_doubt(pair) and pair not in ledger.unconfirmed:
                self.journal.append(UNCONFIRMED, id=notice.id, target=pair[1], kind=notice.kind)
            if ledger is None or ledger.due(pair):
                worker.queue.put(notice)

    def _observe(self, record: dict[str, Any]) -> None:
        """The journal's listener: fold and enqueue, never wait, never raise."""
        with self.lock:
            try:
                found = self.fold.apply(record)
            except (KeyError, TypeError, ValueError):
                return
            for notice in found:
                self._route(notice)

    def stop(self, drain_s: float) -> None:
        """Stop following; wait at most ``drain_s`` for the queued notices, then leave them
        (never sent, so a resume sends them)."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        for worker in self.workers:
            worker.queue.put(None)
        deadline = threading.Event()
        timer = threading.Timer(drain_s, deadline.set)
        timer.daemon = True
        timer.start()
        for worker in self.workers:
            while worker.thread.is_alive() and not deadline.is_set():
                worker.thread.join(timeout=0.1)
            worker.stopping.set()
        timer.cancel()


def live_link(plan: Plan, exporter_url: str | None) -> str | None:
    if plan.notify.link:
        return plan.notify.link
    if exporter_url:
        return exporter_url.rsplit("/", 1)[0] + "/live"
    return None


@contextlib.contextmanager
def notifying(
    plan: Plan, journal: j.Journal, *, live: str | None = None
) -> Iterator[Dispatcher | None]:
    """Deliver the run's notices while the block runs; drained (bounded) on the way out."""
    if not plan.notify.targets:
        yield None
        return
    run_id = journal.run_dir.name
    chans, problems = channels(plan, run_id)
    for name, problem in problems:
        journal.append(TARGET_OFF, target=name, error=problem)
    links = Links(plan=str(plan.source), live=live)
    dispatcher = Dispatcher(plan, journal, links, chans).start()
    try:
        yield dispatcher
    finally:
        dispatcher.stop(plan.notify.drain_s)
