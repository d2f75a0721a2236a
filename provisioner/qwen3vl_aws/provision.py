"""The apply and destroy flows: Terraform, the API key into Secrets Manager, the deployment record.

Order of ``apply`` (and why):

1. ``plan`` the whole module first (``preview``), so a bad value fails before anything exists and
   the user confirms a real plan.
2. ``apply -target=aws_secretsmanager_secret.this``: only the EMPTY secret exists now.
3. ``put_secret_value`` with boto3: the key goes straight to Secrets Manager and never through
   Terraform (variables, state, plan, outputs).
4. A fleet without a domain only: ``apply -target=aws_lb.this`` (the load balancer's DNS name
   exists only once it does), a certificate for that name made here and imported into ACM (or the
   one imported before, kept), its PEM pinned at ``cert_path``, its ARN into the variables. The
   preview's plan used the recorded ARN, or a placeholder on the first apply (the same plan).
5. The full ``apply``: the instance is created only now, so cloud-init finds a current key version
   at first boot instead of racing the CLI.

Terraform records each step in its state, so a failure anywhere leaves a consistent state and a
re-run converges; the deployment is recorded after step 2 so ``destroy`` can clean up a failed run.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .aws.clients import aws_errors
from .aws.terraform import EventSink, PlanSummary, Terraform
from .deployment import IMPORTED_CERTIFICATE_KEY as IMPORTED_CERTIFICATE
from .deployment import Deployment, deployment_dir
from .errors import TerraformError, UsageError
from .serving.plan_record import RECORD_KEY

if TYPE_CHECKING:
    from .aws.pricing import Price
    from .fleet.cost import FleetCost
    from .fleet.options import FleetOptions
    from .serving.overrides import ServingOverrides
    from .serving.planner import ServingPlan

SECRET_ADDRESS = "aws_secretsmanager_secret.this"
LOAD_BALANCER_ADDRESS = "aws_lb.this"
DEFAULT_SSH_USER = "ubuntu"  # the Deep Learning Base AMI (Ubuntu)


@dataclass
class ApplyRequest:
    """Everything ``apply`` needs to know; validated by ``preflight`` before use."""

    name: str
    region: str
    instance_type: str
    allowed_cidrs: list[str]
    allow_open: bool = False
    port: int = 443
    engine: str = "vllm"
    model_id: str = "Qwen/Qwen3-VL-8B-Instruct"
    draft_model_id: str = ""  # a speculative-decoding draft the instance prefetches
    draft_model_revision: str = ""  # its pinned commit ("" = versions.env's pin)
    served_model_name: str = "Qwen/Qwen3-VL-8B-Instruct"
    engine_args: list[str] = field(default_factory=list)
    max_image_pixels: int | None = None  # the serving plan's decoded-pixel cap
    ami_id: str | None = None
    domain: str = ""
    ssh_key_name: str | None = None
    ssh_allowed_cidrs: list[str] = field(default_factory=list)
    ssh_key_path: str | None = None
    allowed_media_domains: list[str] = field(default_factory=list)
    subnet_id: str | None = None
    model_cache: str = "ebs"
    extra_variables: dict[str, Any] = field(default_factory=dict)
    fleet: FleetOptions | None = None  # None: one instance (no --replicas)
    plan_summary: dict[str, Any] = field(default_factory=dict)  # recorded, not a TF variable

    @property
    def transport(self) -> str:
        return "ssh" if self.ssh_key_name else "ssm"

    def terraform_variables(self) -> dict[str, Any]:
        """The root module's inputs (nothing secret)."""
        variables: dict[str, Any] = {
            "name": self.name,
            "region": self.region,
            "instance_type": self.instance_type,
            "allowed_cidrs": self.allowed_cidrs,
            "allow_open_ingress": self.allow_open,
            "port": self.port,
            "engine": self.engine,
            "model_id": self.model_id,
            "draft_model_id": self.draft_model_id,
            "draft_model_revision": self.draft_model_revision,
            "served_model_name": self.served_model_name,
            "engine_args": self.engine_args,
            "domain": self.domain,
            "allowed_media_domains": self.allowed_media_domains,
            "model_cache": self.model_cache,
        }
        if self.max_image_pixels:
            variables["max_image_pixels"] = self.max_image_pixels
        if self.ami_id:
            variables["ami_id"] = self.ami_id
        if self.subnet_id:
            variables["subnet_id"] = self.subnet_id
        if self.ssh_key_name:
            variables["ssh_key_name"] = self.ssh_key_name
            variables["ssh_allowed_cidrs"] = self.ssh_allowed_cidrs
        if self.fleet is not None:
            variables.update(self.fleet.terraform_variables())
        variables.update(self.extra_variables)
        return variables


@dataclass
class Prepared:
    """An apply that passed every check against AWS, with what its plan summary shows."""

    request: ApplyRequest
    account: str
    zones: list[str]
    price: Price
    plan: ServingPlan
    fleet_cost: FleetCost | None = None  # a fleet's hourly cost at MIN and MAX


def prepare(
    clients: Any,
    request: ApplyRequest,
    serving: ServingOverrides,
) -> Prepared:
    """Check ``request`` against AWS before anything is created and plan its serving.

    ``request`` carries the user's already validated values; ``clients`` is a ``ClientFactory``
    for its region; ``serving`` the user's overrides of the serving plan (planning may raise
    ``UsageError`` saying what would fit). Order: region, credentials, the type's offering (and
    the subnet's zone), then the plan and the price, so the cheapest refusal comes first. Returns
    a new request with the plan's model and engine flags filled in; ``request`` is not changed.
    """
    from .aws import preflight, pricing
    from .instance.bake import matching_image
    from .serving.engine_flags import engine_args
    from .serving.plan_record import plan_summary

    check_recorded(request.name, request.region, request.fleet)
    preflight.require_credentials(clients.credentials_available())
    identity = preflight.check_credentials(clients.client("sts"))
    zones = preflight.check_offering(clients.client("ec2"), request.instance_type, request.region)
    if request.subnet_id:
        zones = [
            preflight.check_subnet(
                clients.client("ec2"), request.subnet_id, zones, request.instance_type
            )
        ]
    plan = serving.plan_for(request.instance_type, clients)
    if request.fleet is not None:
        check_fleet(clients, request, zones, plan)
    planned = replace(
        request,
        model_id=plan.model_id,
        served_model_name=plan.model_id,
        draft_model_id=plan.draft_model_id or "",
        engine_args=engine_args(plan, request.engine),
        plan_summary=plan_summary(plan),
        max_image_pixels=plan.max_decoded_pixels,
        # a baked image for these pins skips the packages stage
        ami_id=request.ami_id or matching_image(clients.client("ec2"), request.engine),
    )
    price = pricing.hourly_price(request.instance_type, request.region, clients)
    if request.fleet is None:
        return Prepared(planned, identity.account, zones, price, plan)
    from .fleet.cost import fleet_cost

    spot = (
        pricing.spot_price(clients.client("ec2"), request.instance_type, zones)
        if request.fleet.spot
        else None
    )
    planned.fleet = replace(
        request.fleet, certificate_arn=planned_certificate(request, identity.account)
    )
    return Prepared(
        planned, identity.account, zones, price, plan, fleet_cost(request.fleet, price, spot)
    )


def check_fleet(clients: Any, request: ApplyRequest, zones: list[str], plan: ServingPlan) -> None:
    """A fleet's checks against AWS and the plan: two zones or more offer the type, and every
    alternative type runs the plan made for the primary one."""
    from .fleet.options import check_alternatives, check_zones
    from .serving.overrides import ServingOverrides

    assert request.fleet is not None
    check_zones(zones, request.instance_type, request.region)
    pinned = ServingOverrides.pinned_to(plan)
    check_alternatives(
        request.instance_type,
        request.fleet.alternative_instance_types,
        lambda name: pinned.plan_for(name, clients),
    )


def planned_certificate(request: ApplyRequest, account: str) -> str | None:
    """The listener certificate ARN the preview plans with: none with a domain (ACM issues one),
    the one imported before, or on the first apply a placeholder (``apply`` imports the real
    one once the load balancer has its name; the plan is the same)."""
    if request.domain:
        return None
    previous = _load_if_any(request.name)
    recorded = previous.extra.get(IMPORTED_CERTIFICATE) if previous else None
    if isinstance(recorded, str):
        return recorded
    return (
        f"arn:aws:acm:{request.region}:{account}:certificate/00000000-0000-0000-0000-000000000000"
    )


def terraform_for(name: str, executable: str | None = None) -> Terraform:
    """The Terraform runner of deployment ``name``."""
    return Terraform(deployment_dir(name), executable=executable)


def check_recorded(name: str, region: str, fleet: FleetOptions | None) -> None:
    """Refuse to move a recorded deployment to another region (Terraform would orphan it), or to
    re-apply a recorded fleet as a single instance (a missing --replicas, most likely)."""
    previous = _load_if_any(name)
    if previous is None:
        return
    if previous.region != region:
        raise UsageError(
            f"Deployment {name!r} lives in {previous.region}, not {region}. Pass --region "
            f"{previous.region}, destroy it first, or choose another --name."
        )
    if previous.is_fleet and fleet is None:
        bounds = f"{previous.fleet['min_size']}:{previous.fleet['max_size']}"  # type: ignore[index]
        raise UsageError(
            f"Deployment {name!r} is a fleet: pass --replicas (its bounds are {bounds}) "
            "to keep it one, or `qwen3vl-aws destroy` it before applying a single instance."
        )


def preview(request: ApplyRequest, tf: Terraform, on_event: EventSink | None = None) -> PlanSummary:
    """Stage the module, init, and plan everything (creates nothing)."""
    tf.prepare(request.terraform_variables())
    return tf.plan(on_event)


def secret_has_value(sm_client: Any, secret_arn: str) -> bool:
    """True when the secret already holds a current (AWSCURRENT) version."""
    with aws_errors("Reading the API-key secret's versions"):
        described = sm_client.describe_secret(SecretId=secret_arn)
    return any(
        "AWSCURRENT" in stages for stages in described.get("VersionIdsToStages", {}).values()
    )


def store_key(
    sm_client: Any, secret_arn: str, key_source: Callable[[], str], explicit: bool
) -> bool:
    """Write the key as the secret's first version; False when it already had one (kept).

    ``key_source`` is called only when a value is needed, so a generated key is never made in
    vain and a key read from stdin is read once. A user-supplied key for a secret that already
    holds one is refused: changing a live key is ``rotate-key``'s job.
    """
    if secret_has_value(sm_client, secret_arn):
        if explicit:
            raise UsageError(
                "This deployment already has an API key; --key only sets the first one. Use "
                "`qwen3vl-aws rotate-key` to change it."
            )
        return False
    with aws_errors("Storing the API key in Secrets Manager"):
        sm_client.put_secret_value(SecretId=secret_arn, SecretString=key_source())
    return True


def record(request: ApplyRequest, outputs: dict[str, Any], **extra: Any) -> Deployment:
    """Save what Terraform created as the deployment record (no secrets).

    Values missing from ``outputs`` (a partial record during apply) keep what was recorded
    before, so a failed re-apply does not make a running instance look gone.
    """
    previous = _load_if_any(request.name)
    planned = {RECORD_KEY: request.plan_summary} if request.plan_summary else {}

    def value(name: str) -> Any:
        return outputs.get(name, getattr(previous, name) if previous else None)

    deployment = Deployment(
        name=request.name,
        region=request.region,
        instance_type=request.instance_type,
        engine=request.engine,
        instance_id=value("instance_id"),
        public_ip=value("public_ip"),
        endpoint=value("endpoint"),
        port=int(outputs.get("port", request.port)),
        secret_arn=value("secret_arn"),
        transport=request.transport,
        ssh_user=DEFAULT_SSH_USER if request.ssh_key_name else None,
        ssh_key_path=request.ssh_key_path,
        served_model_name=request.served_model_name,
        launched_at=previous.launched_at if previous else None,
        fleet=value("fleet"),
        extra={**(previous.extra if previous else {}), **planned, **extra},
    )
    if deployment.instance_id and (
        previous is None or previous.instance_id != deployment.instance_id
    ):
        deployment.launched_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    deployment.save()
    return deployment


def apply(
    request: ApplyRequest,
    tf: Terraform,
    sm_client: Any,
    key_source: Callable[[], str],
    *,
    explicit_key: bool = False,
    on_event: EventSink | None = None,
    acm_client: Any = None,
) -> tuple[Deployment, bool]:
    """Create or update everything (after :func:`preview`); return the record and whether a new
    key was stored. ``acm_client`` is needed for a fleet without a domain (its certificate)."""
    tf.apply(on_event, targets=[SECRET_ADDRESS])
    secret_arn = tf.resources()[SECRET_ADDRESS]["arn"]
    partial = record(request, {"secret_arn": secret_arn}, complete=False)
    stored = store_key(sm_client, secret_arn, key_source, explicit_key)
    if request.fleet is not None and not request.domain:
        request = import_listener_certificate(request, tf, acm_client, partial, on_event)
    tf.apply(on_event)
    return record(request, tf.outputs(), complete=True), stored


def import_listener_certificate(
    request: ApplyRequest,
    tf: Terraform,
    acm_client: Any,
    partial: Deployment,
    on_event: EventSink | None = None,
) -> ApplyRequest:
    """Step 4: the load balancer, then its certificate (kept, renewed or new) in ACM, pinned at
    ``cert_path`` and recorded; returns the request with the certificate's ARN."""
    from .fleet.certificate import ensure_imported
    from .instance.endpoint import pin_certificate

    assert request.fleet is not None
    tf.apply(on_event, targets=[LOAD_BALANCER_ADDRESS])
    dns_name = tf.resources()[f"{LOAD_BALANCER_ADDRESS}[0]"]["dns_name"]
    recorded = partial.extra.get(IMPORTED_CERTIFICATE)
    pinned = partial.cert_path.read_text() if partial.cert_path.is_file() else None
    with aws_errors(f"Importing the certificate for {dns_name} into ACM"):
        imported = ensure_imported(
            acm_client,
            request.name,
            dns_name,
            recorded if isinstance(recorded, str) else None,
            pinned,
        )
    pin_certificate(partial, imported.cert_pem)
    record(request, {}, **{IMPORTED_CERTIFICATE: imported.arn})
    request = replace(request, fleet=replace(request.fleet, certificate_arn=imported.arn))
    tf.set_variables(request.terraform_variables())
    return request


def destroy(
    name: str, tf: Terraform, on_event: EventSink | None = None, *, acm_client: Any = None
) -> None:
    """Destroy every resource of the deployment, then the listener certificate the CLI
    imported into ACM (``acm_client``; only once the listener is gone), then forget it."""
    previous = _load_if_any(name)
    imported = previous.extra.get(IMPORTED_CERTIFICATE) if previous else None
    if not tf.var_file.is_file():
        raise UsageError(
            f"Deployment {name!r} has no Terraform inputs recorded in {tf.deployment_dir}; "
            "nothing to destroy from here."
        )
    tf.prepare()
    tf.destroy(on_event)
    left = tf.resources()
    if left:
        raise TerraformError(
            "Terraform still tracks " + ", ".join(sorted(left)) + "; run destroy again."
        )
    if isinstance(imported, str):
        from .fleet.certificate import delete_imported

        with aws_errors(f"Deleting the imported listener certificate {imported} from ACM"):
            delete_imported(acm_client, imported)
    shutil.rmtree(tf.deployment_dir)


def scale_fleet(clients: Any, deployment: Deployment, low: int, high: int, tf: Terraform) -> Any:
    """`scale --replicas MIN:MAX`: the group's bounds now, and the same bounds recorded in the
    deployment record and in Terraform's input ``replicas`` (so the next plan shows no change and
    the next apply keeps them); returns (before, after)."""
    from .fleet.control import scale

    before, after = scale(clients.client("autoscaling"), deployment, low, high)
    tf.update_variables(replicas=after.replicas)
    deployment.fleet = {**(deployment.fleet or {}), "min_size": low, "max_size": high}
    deployment.save()
    return before, after


def _load_if_any(name: str) -> Deployment | None:
    from .deployment import load_deployment
    from .errors import NotDeployedError

    try:
        return load_deployment(name)
    except NotDeployedError:
        return None
