"""vidpipe's exceptions: one-line messages a user can act on.

They carry no exit codes and name no command-line option: the CLI maps each type to an exit
code and adds option hints in one place (`vidpipe.cli`). Messages never contain secrets
(tokens, webhook secrets, database passwords, signed upload URLs).
"""

from __future__ import annotations

from typing import Any


class VidpipeError(Exception):
    """An error the user can act on; `str()` is its one-line message."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(VidpipeError):
    """Bad arguments or input; raised before anything is changed anywhere."""


class ConfigError(UsageError):
    """A missing or malformed setting. Names the variable, never a secret's value."""


class DatabaseMissing(ConfigError):
    """DATABASE_URL names a SQLite file that does not exist. Raised before anything is
    created: only creating the tables (`vidpipe db init`) creates the file."""

    def __init__(self, path: Any, url: str) -> None:
        super().__init__(
            f"the database file {path} does not exist (DATABASE_URL is {url}): point "
            f"DATABASE_URL at the platform's database, or run `vidpipe db init` to create a "
            f"new one; nothing was created"
        )
        self.path = path


class TargetNotFound(UsageError):
    """The lesson or course (`target`, a `vidpipe.Target`) does not exist in the database."""

    def __init__(self, target: Any) -> None:
        super().__init__(f"{target} does not exist in the database")
        self.target = target


class TargetHasVideo(UsageError):
    """The target already records a video and replacing it was not asked for."""

    def __init__(self, target: Any, asset_id: str) -> None:
        super().__init__(f"{target} already has a video (asset {asset_id})")
        self.target = target
        self.asset_id = asset_id


class EnvironmentMismatch(UsageError):
    """The token belongs to another Mux environment than the one the database is pinned to.

    `pinned` and `current` are `vidpipe.mux.Environment`s (with `id` and `name`). Raised
    before any other Mux call and before any database write."""

    def __init__(self, pinned: Any, current: Any) -> None:
        super().__init__(
            f"this database belongs to Mux environment {pinned}, but the Mux token is for "
            f"environment {current}; nothing was changed"
        )
        self.pinned = pinned
        self.current = current


class LockHeld(VidpipeError):
    """Another vidpipe run holds the lock this run needs."""


class TransferError(VidpipeError):
    """The bytes could not be moved to the upload URL (after retries)."""


class DownloadError(VidpipeError):
    """A file could not be downloaded, or not written where it should go (after retries);
    what arrived is kept for a re-run."""


class UploadFailed(VidpipeError):
    """Mux reports the upload or its asset as failed (errored, cancelled, timed out)."""


class WaitTimeout(VidpipeError):
    """The asset did not become ready in time; uploading again resumes waiting."""


class MuxError(VidpipeError):
    """Mux answered with an error, or could not be reached."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class MuxNotFound(MuxError):
    """A definite 404 from Mux."""


class MuxUnauthorized(MuxError):
    """401/403: the credentials were refused."""


class MuxBadRequest(MuxError):
    """400 or another 4xx that retrying will not fix."""


class MuxRateLimited(MuxError):
    """429 after every retry."""

    retry_after: float | None = None


class MuxServerError(MuxError):
    """5xx after every retry."""


class MuxNetworkError(MuxError):
    """No answer: connection refused or dropped, timeout."""


class WebhookRejected(VidpipeError):
    """A webhook whose signature, age or body is not acceptable."""
