"""Settings: secrets from files, clear errors, nothing secret printed."""

from __future__ import annotations

from pathlib import Path

import pytest

from credit_assessment.settings import SettingsError, load_settings


def test_secret_comes_from_its_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "jwt"
    secret.write_text("from-a-file-" + "x" * 40 + "\n", encoding="utf-8")
    monkeypatch.setenv("JWT_SECRET_FILE", str(secret))
    monkeypatch.delenv("JWT_SECRET", raising=False)
    settings = load_settings(data_dir=tmp_path)
    assert settings.jwt_secret is not None
    assert settings.jwt_secret.get_secret_value() == "from-a-file-" + "x" * 40
    assert "from-a-file" not in repr(settings)


def test_variable_wins_over_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "db").write_text("postgresql://file/db", encoding="utf-8")
    monkeypatch.setenv("DATABASE_URL_FILE", str(tmp_path / "db"))
    monkeypatch.setenv("DATABASE_URL", "postgresql://env/db")
    assert load_settings().database_url.get_secret_value() == "postgresql://env/db"  # type: ignore[union-attr]


def test_empty_variable_means_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "")
    assert load_settings().embedded_database


def test_unreadable_secret_file_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JWT_SECRET_FILE", "/nonexistent/jwt")
    with pytest.raises(SettingsError, match="JWT_SECRET_FILE"):
        load_settings()


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        ({"app_env": "production"}, "DATABASE_URL"),
        ({"app_env": "production", "database_url": "postgresql://x/y"}, "JWT_SECRET"),
        ({"jwt_algorithm": "RS256"}, "JWT_PUBLIC_KEY"),
        ({"product_min_amount": 10, "product_max_amount": 5}, "PRODUCT_MIN_AMOUNT"),
        ({"port": 0}, "port"),
    ],
)
def test_incoherent_settings_are_refused(overrides: dict[str, object], says: str) -> None:
    with pytest.raises(SettingsError, match=says):
        load_settings(**overrides)


def test_development_signing_key_is_kept_private_and_stable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("JWT_SECRET", raising=False)
    settings = load_settings(data_dir=tmp_path)
    first = settings.signing_secret()
    assert first == load_settings(data_dir=tmp_path).signing_secret()
    assert (tmp_path / "jwt-secret").stat().st_mode & 0o077 == 0
