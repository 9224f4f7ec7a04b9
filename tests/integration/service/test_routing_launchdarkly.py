"""The service with FLAG_PROVIDER=launchdarkly: the real SDK streaming from the rehearsal's
LaunchDarkly stand-in decides each client's engine; readiness follows the SDK."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from credit_assessment.api.app import create_app
from credit_assessment.settings import SettingsError, load_settings
from tests.conftest import make_settings, start_server
from tests.integration.conftest import TransactionDatabase, running
from tests.integration.service.test_routing import FakeLegacy, legacy, post  # noqa: F401
from tests.integration.traffic.launchdarkly_rig import SDK_KEY, RunningStandIn

FLAG = "new-credit-assessment-enabled"


@pytest.fixture
def standin() -> Iterator[RunningStandIn]:
    running_standin = RunningStandIn()
    yield running_standin
    running_standin.stop()


def ld_app(tmp_path: Path, db: TransactionDatabase, legacy_url: str, url: str, sdk_key: str) -> Any:
    settings = make_settings(
        tmp_path,
        None,
        legacy_url=legacy_url,
        flag_provider="launchdarkly",
        launchdarkly_sdk_key=SecretStr(sdk_key),
        launchdarkly_base_uri=url,
        launchdarkly_stream_uri=url,
    )
    return create_app(settings, database=db)


async def wait_ready(client: Any, timeout_s: float = 20) -> dict[str, Any]:
    for _ in range(int(timeout_s / 0.05)):
        ready = await client.get("/ready")
        if ready.status_code == 200:
            break
        await asyncio.sleep(0.05)
    answer: dict[str, Any] = ready.json()
    return answer


async def test_the_flag_from_launchdarkly_routes_clients_and_is_reported(
    tx_database: TransactionDatabase,
    tmp_path: Path,
    token: str,
    legacy: tuple[FakeLegacy, str],  # noqa: F811
    standin: RunningStandIn,
) -> None:
    app = ld_app(tmp_path, tx_database, legacy[1], standin.url, SDK_KEY)
    async with running(app) as client:
        ready = await wait_ready(client)
        assert ready["checks"]["flags"] == "ok"
        off = {(await post(client, token, i)).json()["engine"] for i in range(10)}
        flag = standin.golive_flag()
        await asyncio.to_thread(flag.set_weight, 100)
        for _ in range(400):
            state = (await client.get("/flags")).json()
            if state["flags"][FLAG]["weightPercent"] == 100:
                break
            await asyncio.sleep(0.05)
        on = {(await post(client, token, i)).json()["engine"] for i in range(10)}
    assert off == {"legacy"} and on == {"new"}
    assert state["provider"] == "launchdarkly" and state["flagSetVersion"] == "2"
    assert state["problem"] is None and SDK_KEY not in str(state)


async def test_a_wrong_sdk_key_leaves_the_service_unready_and_on_legacy(
    tx_database: TransactionDatabase,
    tmp_path: Path,
    token: str,
    legacy: tuple[FakeLegacy, str],  # noqa: F811
    standin: RunningStandIn,
) -> None:
    await asyncio.to_thread(standin.golive_flag().set_weight, 100)  # were it read: all new
    app = ld_app(tmp_path, tx_database, legacy[1], standin.url, "sdk-key-of-nobody-7")
    async with running(app) as client:
        for _ in range(400):
            ready = await client.get("/ready")
            if "refused the SDK key" in ready.json()["checks"]["flags"]:
                break
            await asyncio.sleep(0.05)
        engines = {(await post(client, token, i)).json()["engine"] for i in range(10)}
        flags = (await client.get("/flags")).json()
    assert ready.status_code == 503
    assert "refused the SDK key (401)" in ready.json()["checks"]["flags"]
    assert engines == {"legacy"}
    assert "sdk-key-of-nobody-7" not in str(flags) + ready.text


def test_launchdarkly_needs_its_sdk_key_from_the_variable_or_its_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLAG_PROVIDER", "launchdarkly")
    monkeypatch.delenv("LAUNCHDARKLY_SDK_KEY", raising=False)
    monkeypatch.delenv("LAUNCHDARKLY_SDK_KEY_FILE", raising=False)
    with pytest.raises(SettingsError, match="LAUNCHDARKLY_SDK_KEY"):
        load_settings()
    key_file = tmp_path / "sdk-key"
    key_file.write_text("sdk-from-file\n", encoding="utf-8")
    monkeypatch.setenv("LAUNCHDARKLY_SDK_KEY_FILE", str(key_file))
    settings = load_settings()
    assert settings.launchdarkly_sdk_key is not None
    assert settings.launchdarkly_sdk_key.get_secret_value() == "sdk-from-file"
    assert "sdk-from-file" not in repr(settings)


def test_golive_reads_the_weight_back_from_every_worker_of_a_served_instance(
    tmp_path: Path,
    database_url: str,
    legacy: tuple[FakeLegacy, str],  # noqa: F811
    standin: RunningStandIn,
) -> None:
    key_file = tmp_path / "sdk-key"
    key_file.write_text(SDK_KEY + "\n", encoding="utf-8")
    key_file.chmod(0o600)
    server = start_server(
        tmp_path,
        {
            "DATABASE_URL": database_url,
            "LEGACY_URL": legacy[1],
            "FLAG_PROVIDER": "launchdarkly",
            "LAUNCHDARKLY_SDK_KEY_FILE": str(key_file),
            "LAUNCHDARKLY_BASE_URI": standin.url,
            "LAUNCHDARKLY_STREAM_URI": standin.url,
        },
        workers=2,
    )
    try:
        flag = standin.golive_flag([server.url])
        for percent in (10, 50, 0):
            flag.set_weight(percent)
            (state,) = flag.verify(percent=percent, timeout_s=30).values()
            assert state.weight == percent
        assert standin.control()["counts"]["streams_opened"] >= 2  # one per worker
        assert SDK_KEY not in server.log()
    finally:
        server.stop()
