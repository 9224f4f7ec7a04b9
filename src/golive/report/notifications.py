"""The report's Notifications section: what each target was sent, retried, failed or may have
missed, from the journal's ``notification_*`` records (``golive.notify.delivery``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from golive.notify import delivery
from golive.notify.messages import notices
from golive.plan import Plan


@dataclass(frozen=True)
class TargetCounts:
    target: str
    sent: int
    failed: int
    retries: int
    unconfirmed: int
    not_sent: int


def counts(events: list[dict[str, Any]], plan: Plan) -> list[TargetCounts]:
    """Per target of the plan: delivered, given up, retries, possibly not delivered (in flight
    when golive died), and never tried (golive ended before they were sent)."""
    ledger = delivery.Ledger.fold(events)
    derived = notices(events)
    rows = []
    for target in plan.notify.targets:
        name = target.name
        retries = sum(
            max(0, int(e.get("attempts", 1)) - 1)
            for e in events
            if e.get("event") in (delivery.SENT, delivery.FAILED) and e.get("target") == name
        )
        tried = {i for i, t in ledger.sending if t == name}
        wanted = [
            n
            for n in derived
            if (n.kind in target.events if target.events else True)
            and (target.kind != "status_page" or n.status is not None)
        ]
        rows.append(
            TargetCounts(
                name,
                sum(1 for _, t in ledger.sent if t == name),
                sum(1 for _, t in ledger.failed if t == name),
                retries,
                sum(1 for pair in ledger.sending if pair[1] == name and ledger.in_doubt(pair)),
                sum(1 for n in wanted if n.id not in tried),
            )
        )
    return rows


def lines(events: list[dict[str, Any]], plan: Plan) -> list[str]:
    out = ["## Notifications", ""]
    if not plan.notify.targets:
        return [*out, "No notification target in the plan (`notify.targets`): nobody was told."]
    out += [
        "| target | kind | sent | failed | retries | possibly not delivered | not sent |",
        "|---|---|---|---|---|---|---|",
    ]
    kinds = {t.name: t.kind for t in plan.notify.targets}
    for row in counts(events, plan):
        out.append(
            f"| {row.target} | {kinds[row.target]} | {row.sent} | {row.failed} | {row.retries} "
            f"| {row.unconfirmed} | {row.not_sent} |"
        )
    off = [e for e in events if e.get("event") == delivery.TARGET_OFF]
    if off:
        out += ["", "Targets golive could not use (nothing was sent to them):", ""]
        out += [f"- {e.get('target')}: {e.get('error')}" for e in off]
    failures = [e for e in events if e.get("event") == delivery.FAILED]
    if failures:
        out += ["", "Given up (the go-live went on):", ""]
        out += [
            f"- {e.get('ts')}: {e.get('kind')} to {e.get('target')} after "
            f"{e.get('attempts')} attempts: {e.get('error')}"
            for e in failures
        ]
    out += [
        "",
        "_Possibly not delivered_: golive died while sending it and does not send it again "
        "(at most once per target); _not sent_: golive ended before sending it (a resume "
        "sends it).",
    ]
    return out
