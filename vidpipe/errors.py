"""vidpipe's own exceptions: each carries a one-line message and the exit code the CLI uses.

Messages never contain secrets (tokens, webhook secrets, database passwords).
"""

from __future__ import annotations


class VidpipeError(Exception):
    """An error the user can act on. The CLI prints `error: <message>` and exits `exit_code`."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(VidpipeError):
    """Bad arguments or input; raised before anything is changed anywhere."""

    exit_code = 2


class ConfigError(UsageError):
    """A missing or malformed setting. Names the variable, never a secret's value."""


class LockHeld(VidpipeError):
    """Another vidpipe run holds the lock this run needs."""


class TransferError(VidpipeError):
    """The bytes could not be moved to the upload URL (after retries)."""


class UploadFailed(VidpipeError):
    """Mux reports the upload or its asset as failed (errored, cancelled, timed out)."""


class WaitTimeout(VidpipeError):
    """The asset did not become ready in time; re-running resumes waiting."""


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


class MuxServerError(MuxError):
    """5xx after every retry."""


class MuxNetworkError(MuxError):
    """No answer: connection refused or dropped, timeout."""


class WebhookRejected(VidpipeError):
    """A webhook whose signature, age or body is not acceptable."""
