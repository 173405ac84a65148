"""Settings: one typed object read from the environment and `.env` (the environment wins)."""

from __future__ import annotations

from functools import cached_property
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from vidpipe.errors import ConfigError

DEFAULT_BASE_URL = "https://api.mux.com"
DEFAULT_DATABASE_URL = "sqlite:///vidpipe.db"

_ENV_NAMES = {
    "mux_token_id": "MUX_TOKEN_ID",
    "mux_token_secret": "MUX_TOKEN_SECRET",
    "mux_base_url": "MUX_BASE_URL",
    "database_url": "DATABASE_URL",
    "mux_webhook_secret": "MUX_WEBHOOK_SECRET",
}


class Settings(BaseSettings):
    """vidpipe's configuration. Secrets are `SecretStr` so they never render by accident."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    mux_token_id: str | None = None
    mux_token_secret: SecretStr | None = None
    mux_base_url: str = DEFAULT_BASE_URL
    database_url: SecretStr = Field(default=SecretStr(DEFAULT_DATABASE_URL))
    mux_webhook_secret: SecretStr | None = None

    @field_validator("mux_token_id", "mux_token_secret", "mux_webhook_secret", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        return value.strip() if isinstance(value, str) else value

    @field_validator("mux_base_url", mode="before")
    @classmethod
    def _check_base_url(cls, value: object) -> object:
        if value is None or (isinstance(value, str) and not value.strip()):
            return DEFAULT_BASE_URL
        if not isinstance(value, str):
            raise ValueError("must be a URL")
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http(s) URL such as https://api.mux.com")
        try:
            parts.port  # noqa: B018 - raises on a malformed port
        except ValueError:
            raise ValueError("has a malformed port") from None
        return value.strip().rstrip("/")

    @field_validator("database_url", mode="before")
    @classmethod
    def _check_database_url(cls, value: object) -> object:
        if value is None or (isinstance(value, str) and not value.strip()):
            return DEFAULT_DATABASE_URL
        if isinstance(value, str) and "://" not in value:
            raise ValueError("must be a SQLAlchemy URL such as sqlite:///vidpipe.db")
        return value.strip() if isinstance(value, str) else value

    # -- accessors that enforce what a command needs -------------------------------------

    def mux_credentials(self) -> tuple[str, str]:
        """The Mux token pair, or a ConfigError naming what is missing."""
        missing = [
            name
            for name, val in (
                ("MUX_TOKEN_ID", self.mux_token_id),
                ("MUX_TOKEN_SECRET", self.mux_token_secret),
            )
            if not val
        ]
        if missing:
            raise ConfigError(
                f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set "
                "(environment or .env); Mux commands need an access token"
            )
        assert self.mux_token_id is not None and self.mux_token_secret is not None
        return self.mux_token_id, self.mux_token_secret.get_secret_value()

    def webhook_secret(self) -> str:
        if not self.mux_webhook_secret:
            raise ConfigError("MUX_WEBHOOK_SECRET is not set (environment or .env)")
        return self.mux_webhook_secret.get_secret_value()

    @cached_property
    def database_url_safe(self) -> str:
        """DATABASE_URL with any password masked, for messages."""
        from vidpipe.db import mask_url

        return mask_url(self.database_url.get_secret_value())


def load_settings(**overrides: object) -> Settings:
    """Read settings once. Malformed values raise ConfigError naming the variable only."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else "?"
            name = _ENV_NAMES.get(field, field.upper())
            # err["msg"] never includes the input here (we do not use input in messages).
            reason = str(err.get("msg", "is malformed")).removeprefix("Value error, ")
            problems.append(f"{name} {reason}")
        raise ConfigError("bad configuration: " + "; ".join(problems)) from None
