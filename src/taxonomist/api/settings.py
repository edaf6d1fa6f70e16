"""Server settings: parsed once at start from options or `TAXONOMIST_API_*` variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ApiSettings(BaseSettings):
    """What `taxonomist serve` runs with. Every field can come from `TAXONOMIST_API_<FIELD>`.

    Example:
        >>> ApiSettings(model=Path("models/fast"), open_access=True).served_name
        'fast'
    """

    model_config = SettingsConfigDict(env_prefix="TAXONOMIST_API_", frozen=True)

    store: Path | None = Field(None, description="A model store: every name in it is served.")
    model: Path | None = Field(None, description="One model directory, served under its name.")
    name: str | None = Field(None, description="Name to serve --model under (default: folder).")
    open_access: bool = Field(False, description="No API keys: for local use only.")
    keys_file: Path | None = Field(None, description="File of hashed API keys with scopes.")
    keys: str | None = Field(None, description="Hashed API keys, one entry a line (or ';').")
    allow_download: bool = Field(False, description="Fetch http(s) photo URLs.")
    max_products: int = Field(256, ge=1, le=10_000)
    max_body_bytes: int = Field(2 * 1024 * 1024, ge=1024)
    batch_wait_ms: float = Field(3.0, ge=0, le=1000)
    batch_max_items: int = Field(256, ge=1, le=10_000)
    reload_interval_s: float = Field(1.0, gt=0, le=3600)
    web: bool = Field(True, description="Serve the web page at /.")

    @model_validator(mode="after")
    def _one_source(self) -> ApiSettings:
        if self.store is not None and self.model is not None:
            raise ValueError("give a model store or one model directory, not both")
        return self

    @property
    def served_name(self) -> str | None:
        if self.model is None:
            return None
        return self.name or Path(self.model).resolve().name
