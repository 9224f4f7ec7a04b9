"""The rehearsal's shared Redis (golive.rehearsal.cache): a real redis-server on loopback that
both slots are given as REDIS_URL, kept when already running, stopped by pid, and a rehearsal
that goes on with each slot's own cache when no server is installed."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis

from golive.errors import TargetError
from golive.rehearsal import cache
from golive.targets.processes import ProcessRecord

pytestmark = pytest.mark.skipif(cache.find_server() is None, reason="no redis-server")


def _record(home: Path) -> ProcessRecord:
    return ProcessRecord.from_json(json.loads((home / cache.RECORD).read_text())["process"])


def test_a_started_cache_is_shared_kept_and_stopped(tmp_path: Path) -> None:
    said = cache.start(tmp_path)
    url = cache.slot_env(tmp_path)["REDIS_URL"]
    assert said == f"cache: Redis on {url} (shared by both slots)"
    assert url.startswith("redis://127.0.0.1:")
    record = _record(tmp_path)
    try:
        client = redis.Redis.from_url(url)
        client.set("report", "kept")
        assert cache.start(tmp_path) == said  # running: kept, not a second server
        assert _record(tmp_path).pid == record.pid
        assert redis.Redis.from_url(url).get("report") == b"kept"
        assert client.config_get("bind")["bind"] == "127.0.0.1"
        assert client.config_get("save")["save"] == ""  # nothing on disk
    finally:
        stopped = cache.stop(tmp_path)
    assert stopped == [f"redis (pid {record.pid})"]
    assert not record.alive()
    assert cache.slot_env(tmp_path) == {} and not (tmp_path / cache.RECORD).exists()
    assert cache.stop(tmp_path) == []  # nothing left to stop


def test_a_cache_that_dies_after_a_stop_is_started_again(tmp_path: Path) -> None:
    cache.start(tmp_path)
    first = _record(tmp_path)
    first.stop(timeout_s=5)  # killed behind golive's back
    try:
        cache.start(tmp_path)
        second = _record(tmp_path)
        assert second.pid != first.pid and second.alive()
        port = urlsplit(cache.slot_env(tmp_path)["REDIS_URL"]).port
        assert port is not None and cache.ping(port)
    finally:
        cache.stop(tmp_path)


def test_without_a_server_the_rehearsal_is_told_and_slots_get_no_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cache, "find_server", lambda: None)
    assert cache.start(tmp_path) == f"cache: skipped: {cache.NOT_INSTALLED}"
    assert cache.slot_env(tmp_path) == {}
    assert cache.stop(tmp_path) == []


def test_a_server_that_exits_at_start_is_an_error_with_its_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "redis-server"
    fake.write_text("#!/bin/sh\necho 'Fatal config file error' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setattr(cache, "find_server", lambda: str(fake))
    with pytest.raises(TargetError, match=r"(?s)Redis did not answer.*Fatal config file error"):
        cache.start(tmp_path / "home")
    assert cache.stop(tmp_path / "home") == []  # recorded before the wait, already gone
