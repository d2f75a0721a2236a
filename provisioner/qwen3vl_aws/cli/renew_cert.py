"""``qwen3vl-aws renew-cert``: a new TLS certificate on the instance, pinned again here."""

from __future__ import annotations

import click

from . import App, pass_app


@click.command(name="renew-cert")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option(
    "--accept-host-key",
    metavar="SHA256:...",
    help="SSH only: trust this host key fingerprint on first connection (after checking it).",
)
@pass_app
def command(app: App, yes: bool, accept_host_key: str | None) -> None:
    """Have the instance make a new certificate, reload the gateway and pin the new one.

    Other machines that pinned the old certificate must fetch the new one (`qwen3vl-aws wait`
    there, or copy the file printed at the end).
    """
    from ..instance.certificate import renew_certificate
    from ..instance.health import check_tls

    session = app.deployment(accept_host_key=accept_host_key)
    deployment = session.record
    if not yes:
        click.confirm(
            f"Replace the TLS certificate of {deployment.name!r}? Clients that pinned the old one "
            "stop trusting the endpoint until they pin the new one.",
            abort=True,
        )
    app.out.print("• Instance: making a new certificate and reloading the gateway")
    info = renew_certificate(deployment, session.channel, verify=lambda d: check_tls(d).ok)
    app.out.print(
        f"New certificate pinned at {deployment.cert_path} (sha256 {info.sha256[:16]}..., valid "
        f"until {info.not_after:%Y-%m-%d}); the endpoint presents it."
    )
