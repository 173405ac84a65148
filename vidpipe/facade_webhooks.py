"""The facade's webhook commands: apply one raw Mux event, or serve Mux's webhooks. A part of
`vidpipe.Vidpipe` (which mixes it in); the work is `vidpipe.webhooks`'s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vidpipe.progress import Notify
from vidpipe.session import Session

if TYPE_CHECKING:
    from vidpipe.webhooks import EventOutcome


class WebhookCommands(Session):
    """`apply_webhook` and `serve_webhooks` of `vidpipe.Vidpipe`."""

    def apply_webhook(
        self, body: bytes, *, signature: str | None = None, verify: bool = True
    ) -> EventOutcome:
        """Verify (unless `verify` is false), parse and apply one raw Mux event. With Mux
        credentials configured, the token's environment is checked and the event confirmed
        with Mux. An event from another environment than the database's is ignored."""
        from vidpipe.environment import read_pin
        from vidpipe.webhooks import handle_event, read_event

        secret = self.settings.webhook_secret() if verify else None
        engine = self.engine
        event = read_event(body, secret=secret, signature=signature, verify=verify)
        gateway = None
        if self._has_credentials():
            _engine, gateway, _ = self._preflight()
        pinned = self._environment or read_pin(engine)
        return handle_event(
            engine,
            event,
            gateway=gateway,
            environment=pinned,
            policies=self.settings.playback_policies(),
        )

    def serve_webhooks(
        self,
        *,
        host: str,
        port: int,
        log: Notify,
        metrics_host: str = "127.0.0.1",
        metrics_port: int | None = None,
        log_format: str = "text",
    ) -> None:
        """Serve Mux webhooks until SIGTERM/SIGINT (blocking). With `metrics_port`, Prometheus
        metrics and health checks on that port too; `log_format`: `text` or `json` lines."""
        from vidpipe.environment import read_pin
        from vidpipe.webhooks.serve import create_app, serve, webhook_gateway

        secret = self.settings.webhook_secret()
        engine = self.engine
        if self._has_credentials():
            self.check_environment()  # the token's environment, once, before serving
        pinned = self._environment or read_pin(engine)
        gateway = webhook_gateway(self.settings)
        app = create_app(
            engine,
            secret,
            gateway_factory=(lambda: gateway) if gateway else None,
            environment=pinned,
            log=log,
            policies=self.settings.playback_policies(),
            log_format=log_format,
        )
        try:
            serve(app, host=host, port=port, metrics_host=metrics_host, metrics_port=metrics_port)
        finally:
            if gateway is not None:
                gateway.close()
