"""vidpipe: one pipeline for a course platform's videos on Mux.

The public face is `Vidpipe` (the library facade), its result types and the exceptions.
Names are imported on first use, so `import vidpipe` (and `vidpipe --help`) stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "Vidpipe": "vidpipe.api",
    "Settings": "vidpipe.config",
    "VidpipeError": "vidpipe.errors",
    "UsageError": "vidpipe.errors",
    "ConfigError": "vidpipe.errors",
    "DatabaseMissing": "vidpipe.errors",
    "EnvironmentMismatch": "vidpipe.errors",
    "TargetNotFound": "vidpipe.errors",
    "TargetHasVideo": "vidpipe.errors",
    "LockHeld": "vidpipe.errors",
    "MuxError": "vidpipe.errors",
    "TransferError": "vidpipe.errors",
    "DownloadError": "vidpipe.errors",
    "UploadFailed": "vidpipe.errors",
    "WaitTimeout": "vidpipe.errors",
    "Target": "vidpipe.targets",
    "Kind": "vidpipe.targets",
    "UploadOutcome": "vidpipe.pipeline",
    "Report": "vidpipe.reconcile",
    "StatusReport": "vidpipe.status",
    "DeletePlan": "vidpipe.delete",
    "DeleteResult": "vidpipe.delete",
    "Diagnosis": "vidpipe.doctor",
    "EventOutcome": "vidpipe.webhooks",
    "ImportReport": "vidpipe.importer",
    "DownloadResult": "vidpipe.download",
    "ExportReport": "vidpipe.export",
    "ManifestError": "vidpipe.manifest",
}

__all__ = [
    "ConfigError",
    "DatabaseMissing",
    "DeletePlan",
    "DeleteResult",
    "Diagnosis",
    "DownloadError",
    "DownloadResult",
    "EnvironmentMismatch",
    "EventOutcome",
    "ExportReport",
    "ImportReport",
    "Kind",
    "LockHeld",
    "ManifestError",
    "MuxError",
    "Report",
    "Settings",
    "StatusReport",
    "Target",
    "TargetHasVideo",
    "TargetNotFound",
    "TransferError",
    "UploadFailed",
    "UploadOutcome",
    "UsageError",
    "Vidpipe",
    "VidpipeError",
    "WaitTimeout",
    "__version__",
]

if TYPE_CHECKING:
    from vidpipe.api import Vidpipe
    from vidpipe.config import Settings
    from vidpipe.delete import DeletePlan, DeleteResult
    from vidpipe.doctor import Diagnosis
    from vidpipe.download import DownloadResult
    from vidpipe.errors import (
        ConfigError,
        DatabaseMissing,
        DownloadError,
        EnvironmentMismatch,
        LockHeld,
        MuxError,
        TargetHasVideo,
        TargetNotFound,
        TransferError,
        UploadFailed,
        UsageError,
        VidpipeError,
        WaitTimeout,
    )
    from vidpipe.export import ExportReport
    from vidpipe.importer import ImportReport
    from vidpipe.manifest import ManifestError
    from vidpipe.pipeline import UploadOutcome
    from vidpipe.reconcile import Report
    from vidpipe.status import StatusReport
    from vidpipe.targets import Kind, Target
    from vidpipe.webhooks import EventOutcome


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'vidpipe' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
