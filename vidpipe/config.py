"""Settings: one typed object read from the environment and `.env` (the environment wins).

Because the Mux token goes wherever `MUX_BASE_URL` points, plain `http://` is accepted only for
a loopback host (127.0.0.0/8, ::1, localhost).
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from vidpipe.errors import ConfigError

DEFAULT_BASE_URL = "https://api.mux.com"
DEFAULT_DATABASE_URL = "sqlite:///vidpipe.db"

UNENCODED_AT = (
    "has an @ after the end of its password, which would be read as part of the host: "
    "percent-encode the password (write @ as %40)"
)
"""Why a DATABASE_URL with a raw `@` in its password is refused (names nothing of the URL)."""

# A URL's user information as SQLAlchemy reads it: the user name runs to the first ":" (it may
# hold an "@"), the password to the first "@" after that.
_PASSWORD_THEN_REST = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://[^:/]*:[^@]*@(?P<rest>.*)$", re.S)

_ENV_NAMES = {
    "mux_token_id": "MUX_TOKEN_ID",
    "mux_token_secret": "MUX_TOKEN_SECRET",
    "mux_base_url": "MUX_BASE_URL",
    "database_url": "DATABASE_URL",
    "mux_webhook_secret": "MUX_WEBHOOK_SECRET",
}

_LOOPBACK_V4 = ipaddress.ip_network("127.0.0.0/8")
_LOOPBACK_V6 = ipaddress.ip_address("::1")


def has_unencoded_at(url: str) -> bool:
    """True when `url` carries a password and another `@` somewhere after it.

    SQLAlchemy ends the password at its first `@`, so `postgresql://u:S3cr3t@x@host/db` means
    password `S3cr3t` on host `x@host`: the rest of the password would be shown as a host (by
    `mask_url` and by the driver's errors) and sent to DNS. Whatever follows the password
    (host, port, database, query) is checked, because where the password really ends cannot be
    known once it holds a raw `@`.
    """
    found = _PASSWORD_THEN_REST.match(url.strip())
    return found is not None and "@" in found.group("rest")


def is_loopback_host(host: str) -> bool:
    """`localhost`, an address in 127.0.0.0/8, or ::1 (written as a URL's hostname gives it)."""
    host = host.strip().lower().removeprefix("[").removesuffix("]")
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv4Address):
        return address in _LOOPBACK_V4
    return address == _LOOPBACK_V6


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
        value = value.strip()
        # A backslash or a control character is read differently by different URL parsers:
        # the host checked here must be the host the HTTP client connects to.
        if "\\" in value or any(ch.isspace() or ord(ch) < 0x20 for ch in value):
            raise ValueError("must be a plain URL such as https://api.mux.com")
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http(s) URL such as https://api.mux.com")
        if "@" in parts.netloc:
            raise ValueError("must not carry a user name or password")
        try:
            parts.port  # noqa: B018 - raises on a malformed port
        except ValueError:
            raise ValueError("has a malformed port") from None
        if parts.scheme == "http" and not is_loopback_host(parts.hostname):
            # The token travels in every request's Authorization header.
            raise ValueError(
                "may use plain http:// only for a loopback host (localhost, 127.0.0.0/8, ::1); "
                "use https://"
            )
        return value.rstrip("/")

    @field_validator("database_url", mode="before")
    @classmethod
    def _check_database_url(cls, value: object) -> object:
        if value is None or (isinstance(value, str) and not value.strip()):
            return DEFAULT_DATABASE_URL
        if isinstance(value, str) and "://" not in value:
            raise ValueError("must be a SQLAlchemy URL such as sqlite:///vidpipe.db")
        if isinstance(value, str) and has_unencoded_at(value):
            raise ValueError(UNENCODED_AT)
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
