"""Settings: one typed object read from the environment and `.env` (the environment wins).

Read them with `load_settings()`, which is the only reader of `.env`: constructing `Settings`
directly reads the environment alone.

`.env` is the file of that name in the working directory, and it is read only when it is a
regular file (or a symbolic link to one); `os.stat` checks that before anything opens it.
Anything else named `.env` is ignored, so nothing can make a command hang on it:
- a directory, silently: a virtualenv called `.env` is common and harmless;
- a FIFO, socket or device, with a note that `dotenv_warning` returns for the CLI to print.
A regular `.env` that cannot be read (permissions, not UTF-8) is a ConfigError.

Settings merge one variable at a time, so a `.env` can override some settings while the Mux
token comes from the environment. `Settings.from_dotenv` names the variables whose value came
from `.env`, and `dotenv_warning` turns a mix of the two sources into one line for stderr.
Because the token goes wherever `MUX_BASE_URL` points, plain `http://` is accepted only for a
loopback host (127.0.0.0/8, ::1, localhost).
"""

from __future__ import annotations

import ipaddress
import os
import re
import stat
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import (
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from vidpipe.assets import (
    PUBLIC,
    AssetSettings,
    InvalidAssetSetting,
    Policies,
    check_choice,
    parse_list,
)
from vidpipe.errors import ConfigError

DEFAULT_BASE_URL = "https://api.mux.com"
DEFAULT_DATABASE_URL = "sqlite:///vidpipe.db"

DOTENV = ".env"
"""The settings file read from the working directory (see the module docstring)."""

DOTENV_SHOWN = f"./{DOTENV}"
"""How messages name it."""
_CREDENTIALS = ("MUX_TOKEN_ID", "MUX_TOKEN_SECRET")

UNENCODED_AT = (
    "has an @ after the end of its password, which would be read as part of the host: "
    "percent-encode the password (write @ as %40)"
)
"""Why a DATABASE_URL with a raw `@` in its password is refused (names nothing of the URL)."""

# A URL's user information as SQLAlchemy reads it: the user name runs to the first ":" (it may
# hold an "@"), the password to the first "@" after that.
_PASSWORD_THEN_REST = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://[^:/]*:[^@]*@(?P<rest>.*)$", re.S)

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
    """vidpipe's configuration. Secrets are `SecretStr` so they never render by accident.

    Each field is read from the environment variable of its name in capitals. Build it with
    `load_settings()`, which also reads `.env` and records where values came from.
    """

    model_config = SettingsConfigDict(env_file=None, extra="ignore", case_sensitive=False)

    mux_token_id: str | None = None
    mux_token_secret: SecretStr | None = None
    mux_base_url: str = DEFAULT_BASE_URL
    database_url: SecretStr = Field(default=SecretStr(DEFAULT_DATABASE_URL))
    mux_webhook_secret: SecretStr | None = None
    mux_signing_key_id: str | None = None
    mux_signing_key: SecretStr | None = None

    # Asset settings (see vidpipe.assets): checked here, so a bad value stops every command.
    vidpipe_playback_policy: str = PUBLIC
    vidpipe_preview_playback_policy: str = PUBLIC
    vidpipe_video_quality: str | None = None
    vidpipe_max_resolution: str | None = None
    vidpipe_captions: str | None = None
    vidpipe_static_renditions: str | None = None
    vidpipe_normalize_audio: bool = False

    _from_dotenv: frozenset[str] = PrivateAttr(default_factory=frozenset)
    _from_environment: frozenset[str] = PrivateAttr(default_factory=frozenset)
    _shadowed_in_dotenv: frozenset[str] = PrivateAttr(default_factory=frozenset)
    _dotenv_note: str | None = PrivateAttr(default=None)

    @field_validator(
        "mux_token_id",
        "mux_token_secret",
        "mux_webhook_secret",
        "mux_signing_key_id",
        "mux_signing_key",
        mode="before",
    )
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
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if value is None or (isinstance(value, str) and not value.strip()):
            return DEFAULT_DATABASE_URL
        if isinstance(value, str) and "://" not in value:
            raise ValueError("must be a SQLAlchemy URL such as sqlite:///vidpipe.db")
        if isinstance(value, str) and has_unencoded_at(value):
            raise ValueError(UNENCODED_AT)
        return value.strip() if isinstance(value, str) else value

    @field_validator("vidpipe_playback_policy", "vidpipe_preview_playback_policy", mode="before")
    @classmethod
    def _check_policy(cls, value: object) -> object:
        if value is None or (isinstance(value, str) and not value.strip()):
            return PUBLIC
        return _choice("playback_policy", value)

    @field_validator("vidpipe_video_quality", "vidpipe_max_resolution", mode="before")
    @classmethod
    def _check_choice(cls, value: object, info: ValidationInfo) -> object:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        return _choice(str(info.field_name).removeprefix("vidpipe_"), value)

    @field_validator("vidpipe_captions", "vidpipe_static_renditions", mode="before")
    @classmethod
    def _check_list(cls, value: object, info: ValidationInfo) -> object:
        if value is None:
            return None
        if not isinstance(value, str):
            raise ValueError("must be comma-separated text")
        try:
            items = parse_list(str(info.field_name).removeprefix("vidpipe_"), value)
        except InvalidAssetSetting as exc:
            raise ValueError(_choice_problem(exc)) from None
        return ",".join(items) or None

    @field_validator("vidpipe_normalize_audio", mode="before")
    @classmethod
    def _check_flag(cls, value: object) -> object:
        if isinstance(value, bool) or value is None:
            return bool(value)
        text = str(value).strip().lower()
        if text in ("", "0", "false", "no", "off"):
            return False
        if text in ("1", "true", "yes", "on"):
            return True
        raise ValueError("must be true or false")

    # -- where values came from ----------------------------------------------------------

    @property
    def from_dotenv(self) -> frozenset[str]:
        """Names of the variables (e.g. `MUX_BASE_URL`) whose value came from `.env`."""
        return self._from_dotenv

    @property
    def from_environment(self) -> frozenset[str]:
        """Names of the variables whose value came from the environment (which wins)."""
        return self._from_environment

    @property
    def shadowed_in_dotenv(self) -> frozenset[str]:
        """Names `.env` sets too but the environment won: `.env`'s value was not used."""
        return self._shadowed_in_dotenv

    @property
    def dotenv_note(self) -> str | None:
        """Why a `.env` in the working directory was ignored, when it was (else None)."""
        return self._dotenv_note

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

    def asset_settings(self, kind: str = "lesson") -> AssetSettings:
        """The settings new assets of `kind` (`lesson`, or `course` for a course preview) are
        created with: the same for both but the playback policy."""
        return AssetSettings(
            playback_policy=self.playback_policies().of(kind),
            video_quality=self.vidpipe_video_quality,
            max_resolution=self.vidpipe_max_resolution,
            captions=parse_list("captions", self.vidpipe_captions),
            static_renditions=parse_list("static_renditions", self.vidpipe_static_renditions),
            normalize_audio=self.vidpipe_normalize_audio,
        )

    def playback_policies(self) -> Policies:
        """The playback policy `verify` holds lesson rows and course previews to."""
        return Policies(
            lesson=self.vidpipe_playback_policy, course=self.vidpipe_preview_playback_policy
        )

    def signing_key(self) -> tuple[str, str]:
        """(key ID, the base64-encoded PEM private key as configured), or a ConfigError
        naming both variables. The key itself is never part of a message."""
        if not self.mux_signing_key_id or not self.mux_signing_key:
            raise ConfigError(
                "MUX_SIGNING_KEY_ID and MUX_SIGNING_KEY must both be set (environment or .env) "
                "to sign playback URLs: a Mux signing key's ID and its base64-encoded PEM "
                "private key"
            )
        return self.mux_signing_key_id, self.mux_signing_key.get_secret_value()

    def webhook_secret(self) -> str:
        if not self.mux_webhook_secret:
            raise ConfigError("MUX_WEBHOOK_SECRET is not set (environment or .env)")
        return self.mux_webhook_secret.get_secret_value()


def _choice(setting: str, value: object) -> str:
    if not isinstance(value, str):
        raise ValueError("must be text")
    try:
        return check_choice(setting, value)
    except InvalidAssetSetting as exc:
        raise ValueError(_choice_problem(exc)) from None


def _choice_problem(exc: InvalidAssetSetting) -> str:
    """The problem, worded to follow the variable's name and never showing its value (as for
    every setting: a secret pasted into the wrong variable must not be printed)."""
    if exc.value and exc.value.lower() in (*exc.allowed, "none"):
        return "must not combine none with other values"
    return f"must be one of {', '.join(exc.allowed)}"


def env_name(field: str) -> str:
    """The environment variable a Settings field is read from (`mux_base_url` → MUX_BASE_URL)."""
    info = Settings.model_fields.get(field)
    alias = (info.validation_alias or info.alias) if info is not None else None
    return (alias if isinstance(alias, str) else field).upper()


def load_settings(*, read_dotenv: bool = True, **overrides: object) -> Settings:
    """Read settings once: overrides (by field name), then the environment, then `.env`
    (unless `read_dotenv` is false).

    Malformed values raise ConfigError naming the variable only, never its value. Every field
    `Settings` has is accepted as an override; an unknown name is a TypeError.
    """
    unknown = sorted(set(overrides) - set(Settings.model_fields))
    if unknown:
        raise TypeError(f"load_settings() got unknown setting(s): {', '.join(unknown)}")
    dotenv, note = _usable_dotenv() if read_dotenv else (None, None)
    given: dict[str, Any] = dict(overrides)
    try:
        settings = Settings(_env_file=dotenv, **given)  # type: ignore[call-arg]
        from_dotenv = _names_in_dotenv(dotenv) if dotenv is not None else set()
    except ValidationError as exc:
        raise ConfigError("bad configuration: " + "; ".join(_problems(exc))) from None
    except SettingsError as exc:
        raise ConfigError(f"bad configuration: {_settings_error_problem(exc)}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{DOTENV_SHOWN} is not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(
            f"{DOTENV_SHOWN} cannot be read ({exc.strerror or type(exc).__name__})"
        ) from None
    overridden = {env_name(field) for field in overrides}
    environment = {name.upper() for name in os.environ}
    settings._from_environment = frozenset(env_name(field) for field in Settings.model_fields) & (
        environment - overridden
    )
    settings._from_dotenv = frozenset(from_dotenv - environment - overridden)
    settings._shadowed_in_dotenv = frozenset((from_dotenv & environment) - overridden)
    settings._dotenv_note = note
    return settings


def dotenv_warning(settings: Settings) -> str | None:
    """One line for stderr when `.env` and the environment were mixed, or `.env` was ignored.

    Mixed: some settings came from `.env` while the Mux token secret came from the
    environment, as when a `.env` in the working directory sets only `MUX_BASE_URL`. The line
    names the variables, never a value. None when there is nothing to say.
    """
    if settings.dotenv_note is not None:
        return settings.dotenv_note
    from_env = [name for name in _CREDENTIALS if name in settings._from_environment]
    if "MUX_TOKEN_SECRET" not in from_env or not settings.from_dotenv:
        return None
    order = [env_name(field) for field in Settings.model_fields]
    names = sorted(settings.from_dotenv, key=lambda n: (order.index(n) if n in order else 99, n))
    listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
    source = "the Mux credentials" if len(from_env) == len(_CREDENTIALS) else "MUX_TOKEN_SECRET"
    return f"{listed} came from {DOTENV_SHOWN} while {source} came from the environment"


# -- helpers --------------------------------------------------------------------------------


def _usable_dotenv() -> tuple[Path | None, str | None]:
    """`.env` if it is a regular file; otherwise None and, for the odd kinds, a note why."""
    path = Path(DOTENV)
    try:
        mode = os.stat(path).st_mode  # follows a symlink: a link to a regular file is fine
    except (FileNotFoundError, NotADirectoryError):
        return None, None
    except OSError as exc:
        return None, f"{DOTENV_SHOWN} ignored: cannot stat it ({exc.strerror})"
    if stat.S_ISREG(mode):
        return path, None
    if stat.S_ISDIR(mode):
        return None, None  # most likely a virtualenv named .env
    kind = "a FIFO" if stat.S_ISFIFO(mode) else "not a regular file"
    if stat.S_ISSOCK(mode):
        kind = "a socket"
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        kind = "a device"
    return None, f"{DOTENV_SHOWN} ignored: it is {kind}, not a regular file"


def _names_in_dotenv(path: Path) -> set[str]:
    """The variables of Settings fields that `path` sets (whatever the environment says)."""
    source = DotEnvSettingsSource(Settings, env_file=path, env_file_encoding="utf-8")
    values: dict[str, Any] = source()
    by_key = {field.lower(): field for field in Settings.model_fields}
    by_key.update({env_name(field).lower(): field for field in Settings.model_fields})
    return {env_name(by_key[key.lower()]) for key in values if key.lower() in by_key}


def _problems(exc: ValidationError) -> list[str]:
    problems = []
    for err in exc.errors():
        field = str(err["loc"][0]) if err["loc"] else "?"
        # err["msg"] never includes the input here (we do not use input in messages).
        reason = str(err.get("msg", "is malformed")).removeprefix("Value error, ")
        problems.append(f"{_env_name_of_key(field)} {reason}")
    return problems


def _settings_error_problem(exc: SettingsError) -> str:
    # pydantic-settings names the field (never the value) when a value cannot be decoded,
    # e.g. a list setting whose variable is not valid JSON.
    found = re.search(r'field "([^"]+)"', str(exc))
    return f"{_env_name_of_key(found.group(1))} is malformed" if found else "a setting is malformed"


def _env_name_of_key(key: str) -> str:
    for field in Settings.model_fields:
        if key in (field, env_name(field), env_name(field).lower()):
            return env_name(field)
    return key.upper()
