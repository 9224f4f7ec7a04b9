"""The allowlist (match, expiry), the discrepancy register, masking in both outputs, and the
gate."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest

from golive.errors import ValidationConfigError
from golive.validation import gate, render_markdown, to_json, validate
from golive.validation.config import ValidationConfig, parse_config
from golive.validation.records import SCALE_LEGACY, SCALE_NEW, Application, Pair, Side
from golive.validation.register import Masker
from golive.validation.result import SourceInfo

TODAY = date(2026, 3, 2)
CLIENT = "9b2f7c1e-5a4d-4e1b-8c3a-2d6f0e9a7b11"
APP_REF = "LEGACY-APP-0000123"


def pair(
    legacy: str,
    new: str,
    *,
    term: int = 24,
    grade: str = "C",
    client: str = CLIENT,
    ref: str = APP_REF,
    amount: float = 37_512.5,
    hour: int = 9,
) -> Pair:
    at = datetime(2026, 3, 1, hour, tzinfo=UTC)
    return Pair(
        Application(ref, client, amount, term, at, existing_client=False),
        Side(legacy, 640, grade, frozenset({"R01"}), SCALE_LEGACY),
        Side(new, 530, grade, frozenset({"TERM_OUTSIDE_LIMITS"}), SCALE_NEW, "scorecard-x"),
    )


def config(**extra: object) -> ValidationConfig:
    entries = [
        {
            "id": "term-over-60",
            "description": "new policy declines terms over 60 months",
            "when": {"loan_term_gt": 60, "new_decision": "DECLINED"},
            "reason": "credit policy 2.0 caps the term at 60 months",
            "expires": "2027-03-31",
        },
        {
            "id": "old-refer-rule",
            "description": "legacy referred what the new engine declines",
            "when": {"legacy_decision": "REFER", "new_decision": ["DECLINED"]},
            "reason": "agreed with the risk team",
            "expires": "2026-01-31",
            "status": "accepted",
        },
    ]
    return parse_config({"expected_changes": entries, "segments": {"min_count": 5}, **extra})


def run(pairs: list[Pair], cfg: ValidationConfig | None = None):
    source = SourceInfo("shadow", "test pairs", len(pairs))
    return validate(pairs, cfg or config(), source, TODAY, Masker(b"k" * 32))


def test_allowlist_excuses_matching_differences_and_warns_on_expired_entries():
    pairs = (
        [pair("APPROVED", "DECLINED", term=72)] * 4  # excused by term-over-60
        + [pair("REFER", "DECLINED")] * 3  # the entry has expired: open
        + [pair("APPROVED", "DECLINED", term=24)] * 2  # nothing matches: open
        + [pair("APPROVED", "APPROVED")] * 11
    )
    result = run(pairs)
    assert (result.pairs, result.matched, result.expected) == (20, 11, 4)
    assert result.unexplained.events == 5
    statuses = {(e.diff_class.title, e.status): e.count for e in result.register}
    assert statuses[("legacy APPROVED → new DECLINED, grade C, term >60 m", "expected")] == 4
    assert statuses[("legacy REFER → new DECLINED, grade C, term 13–24 m", "open")] == 3
    assert statuses[("legacy APPROVED → new DECLINED, grade C, term 13–24 m", "open")] == 2
    uses = {u.entry.id: u for u in result.allowlist}
    assert (uses["term-over-60"].matched, uses["term-over-60"].expired) == (4, False)
    assert (uses["old-refer-rule"].matched_while_expired, uses["old-refer-rule"].expired) == (
        3,
        True,
    )
    assert any("'old-refer-rule' expired on 2026-01-31" in w for w in result.warnings)
    assert "old-refer-rule" in render_markdown(result)
    assert to_json(result)["expected_changes"][1]["status"] == "expired"


def test_accepted_entries_and_class_ids_are_stable():
    first = run([pair("APPROVED", "DECLINED")] * 3)
    class_id = first.register[0].diff_class.id
    again = run([pair("APPROVED", "DECLINED")] * 3)
    assert again.register[0].diff_class.id == class_id
    accepted = config(
        examples_per_class=1,
    ).model_copy(
        update={
            "expected_changes": [
                parse_config(
                    {
                        "expected_changes": [
                            {
                                "id": "known-class",
                                "description": "a known difference",
                                "when": {"class_id": class_id},
                                "reason": "signed off by credit risk",
                                "expires": "2026-12-31",
                                "status": "accepted",
                            }
                        ]
                    }
                ).expected_changes[0]
            ]
        }
    )
    result = run([pair("APPROVED", "DECLINED")] * 3, accepted)
    assert [(e.status, e.count, len(e.examples)) for e in result.register] == [("accepted", 3, 1)]


def test_outputs_mask_personal_data():
    other = "1c4d2e3f-0a1b-4c2d-9e8f-7a6b5c4d3e2f"
    pairs = [pair("APPROVED", "DECLINED"), pair("APPROVED", "DECLINED", client=other, ref="X-9")]
    result = run(pairs)
    markdown = render_markdown(result)
    document = json.dumps(to_json(result), ensure_ascii=False)
    for text in (markdown, document):
        for raw in (CLIENT, other, APP_REF, "X-9", "37512", "37,512", "37_512"):
            assert raw not in text
        assert "25k–50k ZMW" in text
    masker = Masker(b"k" * 32)
    assert masker.token("client", CLIENT) in markdown
    assert masker.token("client", CLIENT) != masker.token("client", other)
    # another key (another run) gives other tokens: ids cannot be linked across runs
    assert Masker(b"j" * 32).token("client", CLIENT) not in markdown
    example = to_json(result)["register"][0]["examples"][0]
    assert set(example) == {
        "application",
        "client",
        "client_type",
        "amount_band",
        "term_months",
        "decided_on",
        "differs",
        "legacy",
        "new",
    }
    assert example["decided_on"] == "2026-03-01"


def test_gate_passes_and_fails_with_reasons():
    clean = run([pair("APPROVED", "APPROVED")] * 200)
    passed, reason = gate(clean, tolerance=0.02)
    assert passed, reason
    assert "200 pairs" in reason
    noisy = run([pair("APPROVED", "DECLINED")] * 30 + [pair("APPROVED", "APPROVED")] * 170)
    passed, reason = gate(noisy, tolerance=0.02)
    assert not passed
    assert "unexplained mismatch 15.00%" in reason
    assert "segment" in reason  # the grade-C segment is flagged too
    assert not gate(run([]), tolerance=0.5)[0]


def test_markdown_has_every_section():
    markdown = render_markdown(
        run([pair("APPROVED", "DECLINED")] * 3 + [pair("DECLINED", "DECLINED")])
    )
    for heading in (
        "## Legacy-vs-new validation",
        "### Decisions (legacy rows × new columns)",
        "### Risk grades",
        "### Scores and reasons",
        "### Segments",
        "### Anomalies",
        "### Discrepancy register",
        "### Expected changes",
    ):
        assert heading in markdown
    assert "Score shift: not reported (the two sides score on different scales)" in markdown


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"match": {"decision": "loose"}}, "match.decision"),
        ({"segments": {"loan_term_edges": [24, 12]}}, "strictly increasing"),
        ({"unknown": 1}, "unknown: Extra inputs are not permitted"),
        (
            {
                "expected_changes": [
                    {
                        "id": "x",
                        "description": "d",
                        "when": {},
                        "reason": "r",
                        "expires": "2027-01-01",
                    }
                ]
            },
            "give at least one condition",
        ),
        (
            {
                "expected_changes": [
                    {
                        "id": "x",
                        "description": "d",
                        "when": {"colour": "red"},
                        "reason": "r",
                        "expires": "2027-01-01",
                    }
                ]
            },
            "expected_changes.0.when.colour",
        ),
        ({"anomalies": {"training": {"edges": [500], "shares": [0.5, 0.6]}}}, "sum to 1"),
    ],
)
def test_config_errors_name_the_field(data: dict[str, object], message: str):
    with pytest.raises(ValidationConfigError) as caught:
        parse_config(data, "validation.yaml")
    assert message in caught.value.message
    assert caught.value.exit_code == 2
