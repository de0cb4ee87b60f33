"""The anti-fraud service's settings: ``PIPWORKS_ANTIFRAUD_*`` beside what every service reads."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from pipworks_platform.settings import ServiceSettings

SAMPLE_GEOIP_CSV = Path(__file__).parent / "data" / "geoip-sample.csv"


class AntifraudSettings(ServiceSettings):
    # IP-range CSV (network,country_code,latitude,longitude) for login geolocation; unset
    # turns geolocation off (no new-country or impossible-travel hits).
    antifraud_geoip_csv: Path | None = None
    # Client states kept in memory in front of PostgreSQL (least recently used go first).
    antifraud_state_cache_size: int = Field(default=100_000, ge=0, le=10_000_000)
    # Behaviour baselines: days of history, and the days needed before a baseline scores.
    antifraud_baseline_days: int = Field(default=30, ge=2, le=366)
    antifraud_baseline_min_days: int = Field(default=7, ge=1, le=366)
    # Events fetched, and applied in one transaction, per batch.
    antifraud_fetch_batch: int = Field(default=256, ge=1, le=2000)
    # How often rule changes made by another replica are picked up.
    antifraud_rules_refresh_seconds: float = Field(default=5.0, gt=0, le=3600)
    # How often lapsed restrictions are lifted.
    antifraud_expiry_interval_seconds: float = Field(default=30.0, gt=0, le=3600)
    # Evaluated events kept for back-testing and score history.
    antifraud_event_retention_days: int = Field(default=90, ge=1, le=3660)

    @field_validator("antifraud_geoip_csv")
    @classmethod
    def _readable(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"{value} is not a readable file")
        return value
