"""The bureau emulator's app in process, and the export file it reads."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx
import pytest

from credit_assessment.model.applicants import SMOKE_CLIENT_ID, load_applicants
from credit_assessment.sources.bureau_export import write_reports
from golive.rehearsal.bureau import (
    Emulator,
    Facts,
    Faults,
    ReportsFileError,
    create_app,
    load_reports,
    main,
)


@pytest.mark.parametrize("name", ["bureau.jsonl", "bureau.csv"])
def test_export_round_trips_through_the_emulator_loader(tmp_path: Path, name: str) -> None:
    path = tmp_path / "seed" / name
    assert write_reports(path, 30) == 30
    reports = load_reports(path)
    applicants = load_applicants(30)
    assert len(reports) == 30
    for a in applicants:
        facts = reports[a.client_id]
        assert facts == Facts(
            a.bureau.has_delinquency, a.bureau.recent_inquiries, a.bureau.open_accounts
        )
    assert SMOKE_CLIENT_ID in reports
    assert not list(path.parent.glob(".*partial"))


@pytest.mark.parametrize(
    ("content", "where"),
    [
        (
            '{"client_id": "nope", "has_delinquency": false, '
            '"recent_inquiries": 1, "open_accounts": 1}\n',
            ":1:",
        ),
        ("\n{not json\n", ":2:"),
        (
            json.dumps(
                {
                    "client_id": str(uuid.uuid4()),
                    "has_delinquency": "maybe",
                    "recent_inquiries": 1,
                    "open_accounts": 1,
                }
            ),
            ":1:",
        ),
        (
            json.dumps(
                {
                    "client_id": str(uuid.uuid4()),
                    "has_delinquency": False,
                    "recent_inquiries": -1,
                    "open_accounts": 1,
                }
            ),
            ":1:",
        ),
        (json.dumps({"client_id": str(uuid.uuid4())}), ":1:"),
    ],
)
def test_a_bad_reports_file_names_the_line(tmp_path: Path, content: str, where: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(ReportsFileError, match=where):
        load_reports(path)


def test_main_refuses_bad_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert main(["--port", "1", "--reports", str(tmp_path / "missing.jsonl")]) == 2
    monkeypatch.delenv("EMPTY_KEY", raising=False)
    args = ["--port", "1", "--reports", str(tmp_path / "x"), "--api-key-env", "EMPTY_KEY"]
    assert main(args) == 2


CLIENT = uuid.UUID(int=1)


def client_for(emulator: Emulator, host: str = "127.0.0.1") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(emulator), client=(host, 5000))
    return httpx.AsyncClient(transport=transport, base_url="http://bureau.test")


async def test_report_not_found_and_key() -> None:
    emulator = Emulator({CLIENT: Facts(True, 2, 1)}, api_key="k")
    async with client_for(emulator) as http:
        assert (await http.get(f"/v1/reports/{CLIENT}")).status_code == 401
        ok = await http.get(f"/v1/reports/{CLIENT}", headers={"X-API-Key": "k"})
        assert ok.status_code == 200
        assert ok.json()["hasDelinquency"] is True and ok.json()["openAccounts"] == 1
        missing = await http.get(f"/v1/reports/{uuid.UUID(int=2)}", headers={"X-API-Key": "k"})
        assert missing.status_code == 404
        control = (await http.get("/control")).json()
        assert control["counts"] == {"requests": 3, "unauthorized": 1, "ok": 1, "not_found": 1}


async def test_control_switches_and_validation() -> None:
    emulator = Emulator({CLIENT: Facts(False, 0, 0)})
    async with client_for(emulator) as http:
        set_ = await http.post("/control", json={"mode": "error", "failure_rate": 1})
        assert set_.status_code == 200
        assert (await http.get(f"/v1/reports/{CLIENT}")).status_code == 500
        await http.post("/control", json={"mode": "garbage"})
        kinds = {(await http.get(f"/v1/reports/{CLIENT}")).content for _ in range(6)}
        assert len(kinds) == 6  # every kind of garbage in turn
        for bad in (
            {"mode": "sideways"},
            {"failure_rate": 2},
            {"latency_ms": -1},
            {"latency_ms": 1.5},
            {"colour": "red"},
            [1],
        ):
            answer = await http.post("/control", json=bad)
            assert answer.status_code == 400, bad
        assert (await http.post("/control", content=b"{")).status_code == 400
        reset = (await http.post("/control", json={"reset": True})).json()
        assert reset["mode"] == "ok" and reset["counts"] == {}
        assert (await http.get(f"/v1/reports/{CLIENT}")).status_code == 200


async def test_control_is_loopback_only() -> None:
    emulator = Emulator({})
    async with client_for(emulator, host="10.1.2.3") as http:
        assert (await http.post("/control", json={"mode": "error"})).status_code == 403
    assert emulator.faults.mode == "ok"


async def test_failure_rate_fails_a_share_of_requests() -> None:
    import random

    emulator = Emulator({CLIENT: Facts(False, 0, 0)}, rng=random.Random(7))
    emulator.faults = Faults(mode="error", failure_rate=0.3)
    async with client_for(emulator) as http:
        statuses = [(await http.get(f"/v1/reports/{CLIENT}")).status_code for _ in range(200)]
    assert 40 <= statuses.count(500) <= 80
