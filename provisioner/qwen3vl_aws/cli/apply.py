"""``qwen3vl-aws apply``: validate, show the plan and its price, confirm, create, wait, explain."""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable

import click

from ..aws.catalog import DEFAULT_INSTANCE_TYPE
from ..fleet.options import MODULE_DEFAULTS
from . import App, pass_app, ready_timeout_option
from .serving_opts import engine_option, serving_options

#: --model-cache values (the Terraform variable model_cache) and what each means for the user.
MODEL_CACHES = {
    "ebs": "root EBS volume (kept across stop/start)",
    "instance-store": "NVMe instance store (wiped at every stop: the weights download again at "
    "each start)",
}


@click.command(name="apply")
@click.option(
    "--instance-type",
    default=DEFAULT_INSTANCE_TYPE,
    show_default=True,
    help="GPU instance type: g5 (A10G), g6 (L4) or g6e (L40S) family.",
)
@click.option(
    "--allow",
    "allow",
    multiple=True,
    metavar="CIDR",
    help="Network that may reach the endpoint (repeatable). Default: your public IP, if confirmed.",
)
@click.option(
    "--allow-anywhere",
    is_flag=True,
    help="Permit 0.0.0.0/0 or ::/0 in --allow (the endpoint is still key- and TLS-protected).",
)
@click.option(
    "--port", type=click.IntRange(1, 65535), default=443, show_default=True, help="Public TLS port."
)
@click.option(
    "--key",
    "key_arg",
    metavar="-",
    help="Read the API key from stdin (`--key -`, needs --yes). Default: a new random key.",
)
@click.option("--ami-id", help="AMI to launch instead of the region's NVIDIA Deep Learning AMI.")
@click.option("--domain", default="", help="DNS name the endpoint's certificate should carry.")
@click.option("--ssh-key-name", help="EC2 key pair: use SSH (not SSM) as the command channel.")
@click.option("--ssh-allow", multiple=True, metavar="CIDR", help="Network allowed to port 22.")
@click.option(
    "--ssh-key-path",
    type=click.Path(dir_okay=False),
    help="Private key file of --ssh-key-name, for the SSH command channel.",
)
@click.option(
    "--subnet-id",
    help="Subnet for the instance (its VPC is used). Default: a default-VPC subnet in a zone "
    "offering the type.",
)
@click.option(
    "--allow-media-domain",
    "media_domains",
    multiple=True,
    metavar="DOMAIN",
    help="Only fetch image URLs from this domain (repeatable). Default: any public domain.",
)
@click.option(
    "--model-cache",
    type=click.Choice(list(MODEL_CACHES)),
    default="ebs",
    show_default=True,
    help="Where the weights live: the root EBS volume (kept across stop/start) or the NVMe "
    "instance store (faster, but wiped at every stop: downloaded again at each start).",
)
@click.option(
    "--s3-cache",
    is_flag=True,
    help="Use the account's S3 model cache in this region (created on first use): the first "
    "instance fills it after it answers, later ones load from it. Needs --model-revision.",
)
@click.option(
    "--model-revision",
    metavar="COMMIT",
    help="Pin the model's Hugging Face revision (a 40-character commit hash).",
)
@click.option(
    "--draft-revision",
    metavar="COMMIT",
    help="Pin the --speculative draft's Hugging Face revision (a 40-character commit hash); "
    "needed while userdata/versions.env pins none for it.",
)
@click.option(
    "--replicas",
    metavar="MIN:MAX",
    help="A fleet: MIN to MAX replicas in an Auto Scaling group behind a load balancer (e.g. "
    "2:4; 0:3 scales to zero when idle). Default: one instance.",
)
@click.option(
    "--target-load",
    type=float,
    help="Fleet: requests (running plus waiting) per replica that scaling keeps (default "
    f"{MODULE_DEFAULTS['target_load']}).",
)
@click.option(
    "--idle-minutes",
    type=int,
    help="Fleet with MIN 0: minutes without a request before scaling to zero (default "
    f"{MODULE_DEFAULTS['idle_minutes']}).",
)
@click.option("--spot", is_flag=True, help="Fleet: replicas above --on-demand-base run on spot.")
@click.option(
    "--on-demand-base",
    type=int,
    help="Fleet with --spot: replicas that always run on demand (default "
    f"{MODULE_DEFAULTS['on_demand_base']}).",
)
@click.option(
    "--alternative-instance-types",
    metavar="TYPE[,TYPE]",
    help="Fleet with --spot: other sizes of the same GPU that may run the same serving plan.",
)
@click.option(
    "--route53-zone-id",
    metavar="ZONE",
    help="Fleet with --domain: the public hosted zone; ACM issues the listener's certificate.",
)
@engine_option
@serving_options
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--no-wait", is_flag=True, help="Return when Terraform is done; skip the wait.")
@ready_timeout_option
@pass_app
def command(app: App, **opts) -> None:
    """Stand up the GPU instance and its TLS endpoint (asks before creating anything)."""
    from .. import provision
    from ..aws import model_cache, preflight
    from ..aws.catalog import get_instance_type
    from ..keys.keygen import generate_key, validate_key
    from ..serving import versions
    from ..serving.planner import speculative_draft
    from .tfprogress import TerraformProgress

    key_source, explicit_key = _key_source(opts["key_arg"], opts["yes"], generate_key, validate_key)
    fleet = _fleet_options(opts)
    instance = get_instance_type(opts["instance_type"])
    allowed = _allowed_cidrs(app, opts["allow"], opts["allow_anywhere"], opts["yes"])
    ssh_allowed = preflight.validate_cidrs(opts["ssh_allow"], what="--ssh-allow")
    if bool(ssh_allowed) != bool(opts["ssh_key_name"]):
        raise click.UsageError(
            "--ssh-key-name and --ssh-allow go together: the EC2 key pair to log in with, and "
            "the networks that may reach port 22."
        )
    media_domains = preflight.validate_media_domains(opts["media_domains"])
    revision = model_cache.validate_revision(opts["model_revision"], s3_cache=opts["s3_cache"])
    draft_revision = versions.draft_revision(
        speculative_draft(opts["serving"].speculative), opts["draft_revision"]
    )
    subnet_id = preflight.validate_subnet_id(opts["subnet_id"])
    clients = app.clients()
    request = provision.ApplyRequest(
        name=app.name,
        region=clients.region,
        instance_type=instance.name,
        allowed_cidrs=allowed,
        allow_open=opts["allow_anywhere"],
        port=opts["port"],
        engine=opts["engine"],
        ami_id=opts["ami_id"],
        domain=opts["domain"],
        ssh_key_name=opts["ssh_key_name"],
        ssh_allowed_cidrs=ssh_allowed,
        ssh_key_path=opts["ssh_key_path"],
        allowed_media_domains=media_domains,
        subnet_id=subnet_id,
        model_cache=opts["model_cache"],
        draft_model_revision=draft_revision,
        fleet=fleet,
    )
    prepared = provision.prepare(clients, request, opts["serving"])
    request = prepared.request
    request.extra_variables.update(
        model_cache.terraform_variables(
            prepared.account, request.region, revision, opts["s3_cache"]
        )
    )
    tf = provision.terraform_for(app.name)
    with TerraformProgress(app.err, "Planning") as sink:
        summary = provision.preview(request, tf, sink)
    _show_plan(app, prepared, summary)
    if not opts["yes"] and not click.confirm("Create these resources?", default=False, err=True):
        raise click.Abort()

    if opts["s3_cache"]:
        with app.err.status("Creating or checking the account's S3 model cache ..."):
            bucket = model_cache.ensure_bucket(request.region)
        app.err.print(f"Model cache: s3://{bucket}")
    with TerraformProgress(app.err, "Applying") as sink:
        deployment, stored = provision.apply(
            request,
            tf,
            clients.client("secretsmanager"),
            key_source,
            explicit_key=explicit_key,
            on_event=sink,
            acm_client=clients.client("acm"),
        )
    app.err.print("API key stored in Secrets Manager." if stored else "Kept the existing API key.")
    if deployment.is_fleet:
        if not opts["no_wait"]:
            from .wait import wait_for_fleet

            wait_for_fleet(app, app.deployment(), opts["timeout"])
    elif not opts["no_wait"]:
        from ..instance.readiness import wait_until_ready

        session = app.deployment()
        wait_until_ready(
            session.record,
            session.clients,
            session.channel,
            timeout=opts["timeout"],
            console=app.err,
        )
    _show_next_steps(app, deployment, waited=not opts["no_wait"])


def _fleet_options(opts: dict):
    """The fleet options checked together (None: one instance), before any AWS call."""
    from ..fleet.options import fleet_options

    alternatives = [t.strip() for t in (opts["alternative_instance_types"] or "").split(",")]
    return fleet_options(
        opts["replicas"],
        target_load=opts["target_load"],
        idle_minutes=opts["idle_minutes"],
        spot=opts["spot"],
        on_demand_base=opts["on_demand_base"],
        alternative_instance_types=[t for t in alternatives if t],
        domain=opts["domain"],
        route53_zone_id=opts["route53_zone_id"],
        subnet_id=opts["subnet_id"],
        ssh_key_name=opts["ssh_key_name"],
    )


def _key_source(
    key_arg: str | None,
    yes: bool,
    generate: Callable[[], str],
    validate: Callable[[str], str],
) -> tuple[Callable[[], str], bool]:
    """How the first key is obtained: generated, or read from stdin (never from argv)."""
    if key_arg is None:
        return generate, False
    if key_arg != "-":
        raise click.UsageError(
            "--key takes only '-' (read the key from stdin): a key on the command line would "
            "end up in your shell history and the process list."
        )
    if not yes:
        raise click.UsageError(
            "--key - reads stdin, so it cannot also answer the prompt: add --yes."
        )
    key = validate(click.get_text_stream("stdin").read())
    return (lambda: key), True


def _allowed_cidrs(app: App, allow: tuple[str, ...], anywhere: bool, yes: bool) -> list[str]:
    """The CIDRs given, or this machine's public address after asking."""
    from ..aws.preflight import detect_public_ip, host_cidr, open_networks, validate_cidrs

    if allow:
        cidrs = validate_cidrs(allow, allow_open=anywhere)
        for cidr in open_networks(cidrs):
            app.err.print(
                f"[yellow]Warning:[/yellow] {cidr} lets anyone on the internet reach the endpoint; "
                "only the API key and TLS protect it."
            )
        return cidrs
    cidr = host_cidr(detect_public_ip())
    app.err.print(f"No --allow given: your public IP is {cidr}.")
    if not yes and not click.confirm(
        f"Allow only {cidr} to reach the endpoint?", default=True, err=True
    ):
        raise click.UsageError(
            "Pass --allow CIDR with the networks that should reach the endpoint."
        )
    return [cidr]


def _show_plan(app: App, prepared, summary) -> None:
    from rich.table import Table

    from ..serving.engine_flags import ENGINE_NAMES

    request, price = prepared.request, prepared.price

    table = Table(show_header=False, box=None, padding=(0, 2))
    table.add_row("Deployment", f"{request.name} in {request.region} (account {prepared.account})")
    where = f"subnet {request.subnet_id}, zone" if request.subnet_id else "zones offering it:"
    table.add_row("Instance", f"{request.instance_type} ({where} {', '.join(prepared.zones)})")
    table.add_row(
        "Price",
        f"${price.usd_per_hour:.3f}/hour on demand, ~${price.usd_per_hour * 24:.2f}/day "
        f"- {price.source}",
    )
    if request.fleet is not None and prepared.fleet_cost is not None:
        _fleet_rows(table, request, prepared.fleet_cost)
    table.add_row("Model", prepared.plan.model_id)
    table.add_row(
        "Engine", f"{ENGINE_NAMES[request.engine]} ({' '.join(request.engine_args[:6])} …)"
    )
    table.add_row(
        "Image URLs", "from " + (", ".join(request.allowed_media_domains) or "any public domain")
    )
    table.add_row("Model cache", MODEL_CACHES[request.model_cache])
    table.add_row("Endpoint", f"port {request.port} from {', '.join(request.allowed_cidrs)}")
    ssh = f"{request.ssh_key_name} from {', '.join(request.ssh_allowed_cidrs) or 'nowhere'}"
    table.add_row("SSH", ssh if request.ssh_key_name else "closed (SSM command channel)")
    table.add_row(
        "Terraform",
        f"{summary.add} to add, {summary.change} to change, {summary.remove} to destroy",
    )
    app.err.print(table)


def _fleet_rows(table, request, cost) -> None:
    fleet = request.fleet
    shape = f"{fleet.min_size}..{fleet.max_size} replicas behind an Application Load Balancer"
    if fleet.scales_to_zero:
        shape += f", to zero after {fleet.effective('idle_minutes')} idle minutes"
    if fleet.spot:
        types = ", ".join((request.instance_type, *fleet.alternative_instance_types))
        shape += f"; spot ({types}) above {fleet.effective('on_demand_base')} on demand"
    table.add_row("Fleet", shape)
    for n, line in enumerate(cost.lines()):
        table.add_row("Fleet cost" if n == 0 else "", line)
    certificate = (
        f"ACM-issued for {request.domain} (Route 53 zone {fleet.route53_zone_id})"
        if request.domain
        else "made here for the load balancer's name, imported into ACM, pinned by clients"
    )
    table.add_row("Certificate", certificate)


def _show_next_steps(app: App, deployment, *, waited: bool) -> None:
    endpoint = deployment.endpoint
    cert = deployment.cert_path
    out = app.out
    out.print(f"Endpoint: {endpoint}")
    out.print(
        f"API key:  qwen3vl-aws --name {deployment.name} key   (prints it from Secrets Manager)"
    )
    if not waited:
        out.print(
            f"Not waited for start-up: run `qwen3vl-aws --name {deployment.name} wait`; it also "
            f"pins the endpoint's TLS certificate at {cert}."
        )
    body = json.dumps(
        {
            "model": deployment.served_model_name,
            "max_tokens": 64,
            "messages": [{"role": "user", "content": "Describe Qwen3-VL in one sentence."}],
        }
    )
    out.print("First request:")
    out.print(
        "  (umask 077 && printf 'Authorization: Bearer %s\\n' "
        f'"$(qwen3vl-aws --name {deployment.name} key)" >"$HOME/.qwen3vl-auth")\n'
        f"  curl --cacert {shlex.quote(str(cert))} {endpoint}/chat/completions \\\n"
        '    -H @"$HOME/.qwen3vl-auth" -H "Content-Type: application/json" \\\n'
        f"    -d {shlex.quote(body)}",
        markup=False,
    )
    out.print("Or with the OpenAI SDK:")
    out.print(
        "  import httpx, openai\n"
        f"  client = openai.OpenAI(base_url={endpoint!r}, "
        f"http_client=httpx.Client(verify={str(cert)!r}))",
        markup=False,
    )
