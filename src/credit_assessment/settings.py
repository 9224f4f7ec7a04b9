"""The one Settings object of the service, built once at start-up and passed down.

Every variable is read from the environment. A secret may instead come from a file named by
``<NAME>_FILE`` (as Kubernetes mounts secrets); the file wins over nothing, the variable wins over
the file. Secrets are ``SecretStr`` so they never print.
"""

from __future__ import annotations

import os
import secrets
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SECRET_FIELDS = (
    "database_url",
    "jwt_secret",
    "jwt_public_key",
    "bureau_api_key",
    "legacy_api_token",
    "redis_url",
    "launchdarkly_sdk_key",
)

DEV_JWT_SECRET_FILE = "jwt-secret"  # noqa: S105 - a file name, not a secret


class SettingsError(ValueError):
    """A setting is missing or wrong; the message names the variable."""


def _read_secret_files(values: dict[str, Any]) -> dict[str, Any]:
    for name in SECRET_FIELDS:
        if values.get(name) == "":  # an empty variable means unset
            values.pop(name)
        if values.get(name):
            continue
        file_var = f"{name.upper()}_FILE"
        path = os.environ.get(file_var)
        if not path:
            continue
        try:
            values[name] = Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SettingsError(
                f"{file_var} names {path!r}, which cannot be read: {exc.strerror}"
            ) from exc
    return values


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="", extra="ignore", case_sensitive=False, populate_by_name=True
    )

    app_env: Literal["development", "test", "staging", "production"] = "development"
    version: str = Field(default="2.0.0", validation_alias="APP_VERSION")
    # Which slot this instance is (blue, green; the pod's `slot` label on Kubernetes). Every
    # response names it in X-Slot, so a switch can be seen landing.
    slot: str = Field(default="local", pattern=r"^[A-Za-z0-9._-]{1,32}$")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_requests: bool = True

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64, validation_alias="WEB_CONCURRENCY")
    shutdown_drain_s: float = Field(default=20.0, ge=0, le=300)

    data_dir: Path = Path(".data")
    database_url: SecretStr | None = None
    migrate_on_start: bool = True  # `serve` and `seed` apply pending expand migrations first
    # Readiness judges the schema against this revision instead of the code's newest one: a
    # slot playing the previous release in a rehearsal (its schema predates this code's).
    expected_schema_revision: str | None = None
    db_pool_size: int = Field(default=8, ge=1, le=200)
    db_statement_timeout_ms: int = Field(default=5000, ge=100)

    group_commit_max_batch: int = Field(default=64, ge=1, le=1000)
    group_commit_writers: int = Field(default=2, ge=1, le=32)
    profile_cache_ttl_s: float = Field(default=30.0, ge=0)
    profile_cache_size: int = Field(default=50_000, ge=0)

    jwt_algorithm: Literal["HS256", "RS256"] = "HS256"
    jwt_secret: SecretStr | None = None
    jwt_public_key: SecretStr | None = None
    jwt_jwks_url: str | None = None
    # An unknown kid fetches the JWKS again at most once per this many seconds; a key set
    # older than max_age is fetched again (a key the provider removed stops being trusted).
    jwt_jwks_min_refetch_s: float = Field(default=30.0, ge=0, le=3600)
    jwt_jwks_max_age_s: float = Field(default=300.0, gt=0, le=86400)
    # Per token subject on the assessment endpoints: at most this many requests per window
    # (0: no limit); shared through Redis when REDIS_URL is set.
    rate_limit_requests: int = Field(default=0, ge=0)
    rate_limit_window_s: float = Field(default=1.0, gt=0, le=86400)
    jwt_audience: str = "credit-assessment"
    jwt_issuer: str = "credit-assessment"
    jwt_leeway_s: int = Field(default=30, ge=0, le=300)

    model_path: Path | None = None
    policy_path: Path | None = None

    max_body_bytes: int = Field(default=65_536, ge=1024)
    product_min_amount: Decimal = Decimal("1000")
    product_max_amount: Decimal = Decimal("1000000")
    product_min_term_months: int = Field(default=3, ge=1)
    product_max_term_months: int = Field(default=72, ge=1)
    page_size_max: int = Field(default=100, ge=1)

    bureau_url: str | None = None
    bureau_api_key: SecretStr | None = None
    bureau_timeout_s: float = Field(default=2.0, gt=0, le=30)
    bureau_retries: int = Field(default=1, ge=0, le=5)
    bureau_stale_period_s: float = Field(default=86_400.0, ge=0)
    bureau_breaker_failures: int = Field(default=5, ge=1)
    bureau_breaker_reset_s: float = Field(default=30.0, ge=0)
    legacy_url: str | None = None
    legacy_api_token: SecretStr | None = None
    legacy_path: str = "/legacy/credit/evaluate"
    legacy_timeout_s: float = Field(default=2.0, gt=0, le=30)
    legacy_failover: bool = True
    flag_file: Path | None = Field(default=None, validation_alias="FLAGD_OFFLINE_FLAG_SOURCE_PATH")
    flag_poll_s: float = Field(default=0.25, gt=0, le=10)
    # Where the legacy-to-new flag is evaluated: the flagd file above, or LaunchDarkly's server
    # SDK (streaming; the SDK key from LAUNCHDARKLY_SDK_KEY or LAUNCHDARKLY_SDK_KEY_FILE).
    flag_provider: Literal["flagd", "launchdarkly"] = "flagd"
    launchdarkly_sdk_key: SecretStr | None = None
    launchdarkly_base_uri: str = Field(
        default="https://sdk.launchdarkly.com", pattern=r"^https?://"
    )
    launchdarkly_stream_uri: str = Field(
        default="https://stream.launchdarkly.com", pattern=r"^https?://"
    )
    # Analytics events are off unless this names where to send them.
    launchdarkly_events_uri: str | None = Field(default=None, pattern=r"^https?://")
    # With its data source lost longer than this, the instance is not ready and routes to
    # legacy; until then it keeps evaluating the last flags it received.
    launchdarkly_stale_s: float = Field(default=60.0, gt=0, le=3600)
    rehearsal_faults: bool = False
    shadow_enabled: bool = True
    shadow_score_tolerance: int = Field(default=5, ge=0)
    redis_url: SecretStr | None = None

    @model_validator(mode="before")
    @classmethod
    def _secrets_from_files(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return _read_secret_files(data)
        return data

    @field_validator("data_dir")
    @classmethod
    def _absolute_data_dir(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @model_validator(mode="after")
    def _coherent(self) -> Settings:
        if self.product_min_amount >= self.product_max_amount:
            raise SettingsError("PRODUCT_MIN_AMOUNT must be below PRODUCT_MAX_AMOUNT")
        if self.product_min_term_months > self.product_max_term_months:
            raise SettingsError("PRODUCT_MIN_TERM_MONTHS must not exceed PRODUCT_MAX_TERM_MONTHS")
        if self.jwt_algorithm == "RS256" and not (self.jwt_public_key or self.jwt_jwks_url):
            raise SettingsError("JWT_ALGORITHM=RS256 needs JWT_PUBLIC_KEY(_FILE) or JWT_JWKS_URL")
        if self.flag_provider == "launchdarkly" and self.launchdarkly_sdk_key is None:
            raise SettingsError(
                "FLAG_PROVIDER=launchdarkly needs LAUNCHDARKLY_SDK_KEY(_FILE), the server SDK key "
                "of the environment"
            )
        if self.rehearsal_faults and self.app_env in ("staging", "production"):
            raise SettingsError(f"REHEARSAL_FAULTS cannot be enabled when APP_ENV={self.app_env}")
        if self.app_env in ("staging", "production"):
            if self.database_url is None:
                raise SettingsError(f"DATABASE_URL(_FILE) is required when APP_ENV={self.app_env}")
            if self.jwt_algorithm == "HS256" and self.jwt_secret is None:
                raise SettingsError(f"JWT_SECRET(_FILE) is required when APP_ENV={self.app_env}")
        return self

    @property
    def embedded_database(self) -> bool:
        return self.database_url is None

    def signing_secret(self) -> str:
        """The HS256 secret: configured, or (development/test only) one kept in the data dir."""
        if self.jwt_secret is not None:
            return self.jwt_secret.get_secret_value()
        path = self.data_dir / DEV_JWT_SECRET_FILE
        if path.exists():
            return path.read_text(encoding="utf-8").strip()
        path.parent.mkdir(parents=True, exist_ok=True)
        value = secrets.token_urlsafe(48)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first
            return path.read_text(encoding="utf-8").strip()
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(value)
        return value


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment (and ``overrides``); a bad value is a SettingsError."""
    try:
        return Settings(**overrides)
    except SettingsError:
        raise
    except ValueError as exc:  # pydantic ValidationError
        raise SettingsError(str(exc)) from exc
