"""Mux webhooks: the signature check (`signature`) and each event applied through the same
writers as sync (`events`). The HTTP server is `vidpipe.webhooks.serve`, imported on its
own so that importing this package never loads starlette or uvicorn.
"""

from vidpipe.webhooks.events import (
    EventOutcome,
    MalformedEvent,
    Outcome,
    apply_payload,
    handle_event,
    parse_event,
    read_event,
)
from vidpipe.webhooks.signature import (
    TOLERANCE,
    BadSignature,
    MissingSignature,
    StaleSignature,
    sign,
    verify_signature,
)

__all__ = [
    "TOLERANCE",
    "BadSignature",
    "EventOutcome",
    "MalformedEvent",
    "MissingSignature",
    "Outcome",
    "StaleSignature",
    "apply_payload",
    "handle_event",
    "parse_event",
    "read_event",
    "sign",
    "verify_signature",
]
