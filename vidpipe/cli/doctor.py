"""`vidpipe doctor`: check the deployment and say what to fix."""

from typing import TYPE_CHECKING, Annotated

import typer

from vidpipe.cli.base import Invocation, app
from vidpipe.cli.options import command

if TYPE_CHECKING:
    from vidpipe.ui import UI

WebhooksOpt = Annotated[
    bool,
    typer.Option("--webhooks", help="This deployment receives webhooks: require the secret."),
]


@command(app, output="json")
def doctor(ctx: typer.Context, webhooks: WebhooksOpt = False, *, ui: "UI") -> int:
    """Check the deployment and say what to fix; changes nothing. Exit 1 if a check fails."""
    from vidpipe.config import load_settings
    from vidpipe.doctor import diagnose_loading
    from vidpipe.render import render_diagnosis

    # Settings that do not load are a finding here (the settings check), not a refusal.
    invocation = ctx.find_object(Invocation) or Invocation()
    diagnosis = diagnose_loading(
        lambda: load_settings(read_dotenv=invocation.read_dotenv, **invocation.settings),
        webhooks=webhooks,
    )
    render_diagnosis(ui, diagnosis)
    return 0 if diagnosis.ok else 1
