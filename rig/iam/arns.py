"""The resources (ARNs) and condition keys an AWS request is authorized against.

moto checks every request against Resource ``*``. To check resource scoping, the recording server
(``rig.iam.server``) turns each request into the (action, resource ARN, condition context) pairs
IAM would evaluate, following the Service Authorization Reference for the actions this toolkit,
its Terraform module and its instance scripts call. It also adds the checks AWS makes that moto
does not: ``iam:PassRole`` when an instance is launched with an instance profile, and the tagging
action when a resource is created with tags.

Actions IAM only authorizes against ``*`` (Describe/List calls, Pricing, GetCallerIdentity) are
listed in :data:`UNSCOPED`. An action in neither that list nor the mappings below is recorded as
unmapped, and the scoping check fails on it: a new call needs a line here, never a silent ``*``.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

#: Actions whose authorization uses Resource "*" only (or whose resource we do not narrow).
UNSCOPED = re.compile(
    r"^(ec2:Describe\w+|ec2:GetConsoleOutput|iam:List(Roles|Policies|InstanceProfiles)"
    r"|elasticloadbalancing:Describe\w+|autoscaling:Describe\w+|acm:ListCertificates"
    r"|cloudwatch:(DescribeAlarms|GetMetricData|ListMetrics)"
    r"|pricing:\w+|sts:GetCallerIdentity|secretsmanager:(ListSecrets|GetRandomPassword)"
    r"|ssm:(GetCommandInvocation|ListCommandInvocations|ListCommands|DescribeInstanceInformation)"
    r"|autoscaling:Describe\w+|elasticloadbalancing:Describe\w+)$"
)


#: Signing names that differ from the service's prefix in IAM actions (CloudWatch signs as
#: "monitoring", but its actions are "cloudwatch:...").
IAM_PREFIX = {"monitoring": "cloudwatch"}


@dataclass
class Request:
    """One request as the server saw it."""

    service: str  # the signing name: ec2, iam, secretsmanager, ssm, sts, pricing
    operation: str  # e.g. DescribeSecret
    params: dict[str, Any]
    account: str
    region: str
    lookup: Callable[[str, str], Any] = field(repr=False)  # (kind, id) -> ARN/tags or None

    @property
    def action(self) -> str:
        return f"{IAM_PREFIX.get(self.service, self.service)}:{self.operation}"

    def values(self, name: str) -> list[str]:
        """Every value of ``name``, plain (JSON) or numbered (``Name.1``, query protocol)."""
        found = []
        for key, value in self.params.items():
            if key == name or re.fullmatch(re.escape(name) + r"\.\d+", key):
                found.extend(value if isinstance(value, list) else [value])
        return [str(v) for v in found]

    def ec2_arn(self, kind: str, ident: str, *, owner: str | None = None) -> str:
        account = self.account if owner is None else owner
        return f"arn:aws:ec2:{self.region}:{account}:{kind}/{ident}"


@dataclass
class Pair:
    """One authorization IAM makes for a request: an action on a resource, with context."""

    action: str
    resource: str
    context: dict[str, str] = field(default_factory=dict)


EC2_ID_KINDS = {
    "i-": "instance",
    "sg-": "security-group",
    "eipalloc-": "elastic-ip",
    "vol-": "volume",
    "eni-": "network-interface",
    "subnet-": "subnet",
    "vpc-": "vpc",
    "ami-": "image",
    "sgr-": "security-group-rule",
    "lt-": "launch-template",
}


def ec2_resource(req: Request, ident: str) -> str:
    kind = next((k for p, k in EC2_ID_KINDS.items() if ident.startswith(p)), "unknown")
    return req.ec2_arn(kind, ident, owner="" if kind == "image" else None)


def _secret(req: Request) -> list[str]:
    secret_id = (req.values("SecretId") or req.values("Name"))[0]
    arn = req.lookup("secret", secret_id)
    if arn is None and req.operation == "CreateSecret":
        # The ARN a new secret gets: its name and six random characters.
        arn = f"arn:aws:secretsmanager:{req.region}:{req.account}:secret:{secret_id}-??????"
    return [arn or secret_id]


def _iam(kind: str, param: str) -> Callable[[Request], list[str]]:
    def resources(req: Request) -> list[str]:
        name = req.values(param)[0]
        path = (req.values("Path") or ["/"])[0]
        return [req.lookup(kind, name) or f"arn:aws:iam::{req.account}:{kind}{path}{name}"]

    return resources


def _ec2_ids(*params: str) -> Callable[[Request], list[str]]:
    def resources(req: Request) -> list[str]:
        return [ec2_resource(req, v) for p in params for v in req.values(p)]

    return resources


def _run_instances(req: Request) -> list[str]:
    ids = [*req.values("ImageId"), *req.values("SubnetId"), *req.values("SecurityGroupId")]
    created = ("instance", "volume", "network-interface")
    return [ec2_resource(req, i) for i in ids] + [req.ec2_arn(k, "*") for k in created]


def _send_command(req: Request) -> list[str]:
    document = req.values("DocumentName")[0]
    owner = "" if document.startswith("AWS-") else req.account
    return [f"arn:aws:ssm:{req.region}:{owner}:document/{document}"] + [
        req.ec2_arn("instance", i) for i in req.values("InstanceIds")
    ]


def _parameters(req: Request) -> list[str]:
    names = req.values("Name") + req.values("Names")
    return [
        f"arn:aws:ssm:{req.region}:{'' if n.startswith('/aws/') else req.account}:parameter{n}"
        for n in names
    ]


def _assume_role(req: Request) -> list[str]:
    return req.values("RoleArn")


# --- the fleet: Elastic Load Balancing, Auto Scaling, ACM, CloudWatch alarms -------------------


def _given_arns(*params: str) -> Callable[[Request], list[str]]:
    """Requests that name their resources by ARN (ELB, ACM, CloudWatch tagging)."""

    def resources(req: Request) -> list[str]:
        return [v for p in params for v in req.values(p)]

    return resources


def _elb_new(kind: str) -> Callable[[Request], list[str]]:
    """CreateLoadBalancer / CreateTargetGroup: the new resource, its id not known yet."""

    def resources(req: Request) -> list[str]:
        name = req.values("Name")[0]
        prefix = "loadbalancer/app" if kind == "loadbalancer" else kind
        return [f"arn:aws:elasticloadbalancing:{req.region}:{req.account}:{prefix}/{name}/*"]

    return resources


def _elb_child(parent: str, child: str) -> Callable[[Request], list[str]]:
    """CreateListener (on a load balancer) / CreateRule (on a listener): the parent, and the new
    child under it (what tagging-on-create is authorized against)."""

    def resources(req: Request) -> list[str]:
        arn = req.values(parent)[0]
        head, _, path = arn.partition(":loadbalancer/" if child == "listener" else ":listener/")
        return [arn, f"{head}:{child}/{path}/*"]

    return resources


def autoscaling_group_arn(req: Request, name: str) -> str:
    """A group's ARN by its name (the group id part is a wildcard: IAM matches it so)."""
    return (
        f"arn:aws:autoscaling:{req.region}:{req.account}:autoScalingGroup:*:"
        f"autoScalingGroupName/{name}"
    )


def _autoscaling_group(req: Request) -> list[str]:
    return [autoscaling_group_arn(req, n) for n in req.values("AutoScalingGroupName")]


def _acm_import(req: Request) -> list[str]:
    arns = req.values("CertificateArn")  # a re-import keeps the ARN
    return arns or [f"arn:aws:acm:{req.region}:{req.account}:certificate/*"]


def _alarms(req: Request) -> list[str]:
    names = req.values("AlarmName") + req.values("AlarmNames.member")
    return [
        f"arn:aws:cloudwatch:{req.region}:{req.account}:alarm:{n}" for n in dict.fromkeys(names)
    ]


def _launch_template(req: Request) -> list[str]:
    ids = req.values("LaunchTemplateId")
    if not ids and req.operation == "CreateLaunchTemplate":
        return [req.ec2_arn("launch-template", "*")]
    return [req.ec2_arn("launch-template", i) for i in ids]


def _named(service: str, kind: str, *params: str) -> Callable[[Request], list[str]]:
    """A resource named by a request parameter: ``arn:aws:SERVICE:REGION:ACCOUNT:KIND/NAME``
    (EventBridge rules, SSM documents)."""

    def resources(req: Request) -> list[str]:
        names = [v for p in params for v in req.values(p)]
        return [f"arn:aws:{service}:{req.region}:{req.account}:{kind}/{n}" for n in names]

    return resources


def _ssm_tagged(req: Request) -> list[str]:
    """ssm:AddTagsToResource / ListTagsForResource name a document by type and id."""
    kind = {"Document": "document"}.get(next(iter(req.values("ResourceType")), ""), "*")
    return [f"arn:aws:ssm:{req.region}:{req.account}:{kind}/{i}" for i in req.values("ResourceId")]


#: The at-zero switch (fleet_at_zero.tf): an EventBridge rule and an SSM Automation runbook.
AT_ZERO_MAPPED: dict[str, Callable[[Request], list[str]]] = {
    **{
        f"events:{op}": _named("events", "rule", "Name", "Rule")
        for op in [
            "PutRule",
            "DescribeRule",
            "DeleteRule",
            "PutTargets",
            "RemoveTargets",
            "ListTargetsByRule",
        ]
    },
    "events:ListTagsForResource": lambda req: req.values("ResourceARN"),
    "events:TagResource": lambda req: req.values("ResourceARN"),
    **{
        f"ssm:{op}": _named("ssm", "document", "Name")
        for op in [
            "CreateDocument",
            "GetDocument",
            "DescribeDocument",
            "UpdateDocument",
            "UpdateDocumentDefaultVersion",
            "DeleteDocument",
            "DescribeDocumentPermission",
        ]
    },
    "ssm:AddTagsToResource": _ssm_tagged,
    "ssm:ListTagsForResource": _ssm_tagged,
}

#: Condition keys a service sets from a request's own parameters (key -> parameter).
REQUEST_KEYS: dict[str, dict[str, str]] = {
    "cloudwatch:PutMetricData": {"cloudwatch:namespace": "Namespace"},
}


FLEET_MAPPED: dict[str, Callable[[Request], list[str]]] = {
    "elasticloadbalancing:CreateLoadBalancer": _elb_new("loadbalancer"),
    "elasticloadbalancing:CreateTargetGroup": _elb_new("targetgroup"),
    "elasticloadbalancing:CreateListener": _elb_child("LoadBalancerArn", "listener"),
    "elasticloadbalancing:CreateRule": _elb_child("ListenerArn", "listener-rule"),
    **{
        f"elasticloadbalancing:{op}": _given_arns(
            "LoadBalancerArn", "TargetGroupArn", "ListenerArn", "RuleArn", "ResourceArns.member"
        )
        for op in [
            "DeleteLoadBalancer",
            "ModifyLoadBalancerAttributes",
            "SetSecurityGroups",
            "SetSubnets",
            "DeleteTargetGroup",
            "ModifyTargetGroup",
            "ModifyTargetGroupAttributes",
            "RegisterTargets",
            "DeregisterTargets",
            "DeleteListener",
            "ModifyListener",
            "ModifyListenerAttributes",
            "DeleteRule",
            "ModifyRule",
            "SetRulePriorities",
            "AddTags",
            "RemoveTags",
        ]
    },
    **{
        f"autoscaling:{op}": _autoscaling_group
        for op in [
            "CreateAutoScalingGroup",
            "UpdateAutoScalingGroup",
            "DeleteAutoScalingGroup",
            "SetDesiredCapacity",
            "PutScalingPolicy",
            "DeletePolicy",
            "PutLifecycleHook",
            "DeleteLifecycleHook",
            "EnableMetricsCollection",
            "DisableMetricsCollection",
            "AttachLoadBalancerTargetGroups",
            "DetachLoadBalancerTargetGroups",
            "StartInstanceRefresh",
            "CancelInstanceRefresh",
            "SuspendProcesses",
            "ResumeProcesses",
        ]
    },
    "acm:ImportCertificate": _acm_import,
    **{
        f"acm:{op}": _given_arns("CertificateArn")
        for op in [
            "DescribeCertificate",
            "GetCertificate",
            "DeleteCertificate",
            "ListTagsForCertificate",
            "AddTagsToCertificate",
            "RemoveTagsFromCertificate",
        ]
    },
    **{
        f"cloudwatch:{op}": _alarms
        for op in ["PutMetricAlarm", "DeleteAlarms", "EnableAlarmActions", "DisableAlarmActions"]
    },
    **{
        f"cloudwatch:{op}": _given_arns("ResourceARN")
        for op in ["ListTagsForResource", "TagResource", "UntagResource"]
    },
    **{
        f"ec2:{op}": _launch_template
        for op in [
            "CreateLaunchTemplate",
            "CreateLaunchTemplateVersion",
            "ModifyLaunchTemplate",
            "DeleteLaunchTemplate",
            "DeleteLaunchTemplateVersions",
            "GetLaunchTemplateData",
        ]
    },
}


MAPPED: dict[str, Callable[[Request], list[str]]] = {
    **{
        f"secretsmanager:{op}": _secret
        for op in [
            "CreateSecret",
            "DescribeSecret",
            "GetSecretValue",
            "PutSecretValue",
            "DeleteSecret",
            "ListSecretVersionIds",
            "UpdateSecretVersionStage",
            "GetResourcePolicy",
            "TagResource",
            "UntagResource",
            "UpdateSecret",
            "RestoreSecret",
        ]
    },
    **{
        f"iam:{op}": _iam("role", "RoleName")
        for op in [
            "CreateRole",
            "GetRole",
            "DeleteRole",
            "TagRole",
            "UntagRole",
            "UpdateRole",
            "UpdateAssumeRolePolicy",
            "PutRolePolicy",
            "GetRolePolicy",
            "DeleteRolePolicy",
            "ListRolePolicies",
            "AttachRolePolicy",
            "DetachRolePolicy",
            "ListAttachedRolePolicies",
            "ListInstanceProfilesForRole",
        ]
    },
    **{
        f"iam:{op}": _iam("instance-profile", "InstanceProfileName")
        for op in [
            "CreateInstanceProfile",
            "GetInstanceProfile",
            "DeleteInstanceProfile",
            "AddRoleToInstanceProfile",
            "RemoveRoleFromInstanceProfile",
            "TagInstanceProfile",
        ]
    },
    **{
        f"ec2:{op}": _ec2_ids("InstanceId", "InstanceIds")
        for op in [
            "StartInstances",
            "StopInstances",
            "TerminateInstances",
            "ModifyInstanceAttribute",
            "ModifyInstanceMetadataOptions",
            "MonitorInstances",
        ]
    },
    **{
        f"ec2:{op}": _ec2_ids("GroupId")
        for op in [
            "AuthorizeSecurityGroupIngress",
            "AuthorizeSecurityGroupEgress",
            "DeleteSecurityGroup",
            "RevokeSecurityGroupIngress",
            "RevokeSecurityGroupEgress",
        ]
    },
    "ec2:CreateTags": _ec2_ids("ResourceId"),
    "ec2:DeleteTags": _ec2_ids("ResourceId"),
    "ec2:AssociateAddress": _ec2_ids("AllocationId", "InstanceId"),
    "ec2:DisassociateAddress": lambda req: [req.ec2_arn("elastic-ip", "*")],
    "ec2:ReleaseAddress": _ec2_ids("AllocationId"),
    "ec2:RunInstances": _run_instances,
    "ec2:GetInstanceUefiData": _ec2_ids("InstanceId"),
    "ec2:AllocateAddress": lambda req: [req.ec2_arn("elastic-ip", "*")],
    "ec2:CreateSecurityGroup": lambda req: [
        req.ec2_arn("security-group", "*"),
        *[req.ec2_arn("vpc", v) for v in req.values("VpcId")],
    ],
    "ssm:SendCommand": _send_command,
    "elasticloadbalancing:ModifyRule": lambda req: req.values("RuleArn"),
    "ssm:GetParameter": _parameters,
    "ssm:GetParameters": _parameters,
    "sts:AssumeRole": _assume_role,
    **FLEET_MAPPED,
    **AT_ZERO_MAPPED,
    "cloudwatch:PutMetricData": lambda req: ["*"],  # scoped by its namespace key only
}


#: Creating with tags is also authorized as the tagging action (AWS checks both; moto neither).
TAG_ON_CREATE = {
    "iam:CreateRole": "iam:TagRole",
    "iam:CreateInstanceProfile": "iam:TagInstanceProfile",
    "secretsmanager:CreateSecret": "secretsmanager:TagResource",
    "ec2:RunInstances": "ec2:CreateTags",
    "ec2:CreateSecurityGroup": "ec2:CreateTags",
    "ec2:AllocateAddress": "ec2:CreateTags",
    "ec2:CreateLaunchTemplate": "ec2:CreateTags",
    "elasticloadbalancing:CreateLoadBalancer": "elasticloadbalancing:AddTags",
    "elasticloadbalancing:CreateTargetGroup": "elasticloadbalancing:AddTags",
    "elasticloadbalancing:CreateListener": "elasticloadbalancing:AddTags",
    "elasticloadbalancing:CreateRule": "elasticloadbalancing:AddTags",
    "autoscaling:CreateAutoScalingGroup": "autoscaling:CreateOrUpdateTags",
    "acm:ImportCertificate": "acm:AddTagsToCertificate",
    "cloudwatch:PutMetricAlarm": "cloudwatch:TagResource",
    "events:PutRule": "events:TagResource",
    "ssm:CreateDocument": "ssm:AddTagsToResource",
}

#: Services whose tag-on-create check names the creating action in a condition key.
CREATE_ACTION_KEY = {
    "ec2": "ec2:CreateAction",
    "elasticloadbalancing": "elasticloadbalancing:CreateAction",
}


def _has_tags(req: Request) -> bool:
    return any(k == "Tags" or k.startswith(("Tags.", "TagSpecification")) for k in req.params)


def _implied(req: Request, found: list[Pair]) -> list[Pair]:
    """The extra authorizations AWS makes for this request: tagging what it creates, and
    passing the instance role to EC2."""
    implied = []
    if req.action in TAG_ON_CREATE and _has_tags(req):
        # IAM and Secrets Manager: the one resource created; EC2: the created resources of the
        # types the request's TagSpecifications name.
        created, context = [p.resource for p in found], {}
        if req.service == "ec2":
            typed = {v for k, v in req.params.items() if k.endswith(".ResourceType")}
            created = [r for r in created if r.endswith("*") and r.split(":")[-1][:-2] in typed]
        elif req.service == "elasticloadbalancing":
            created = [r for r in created if r.endswith("*")]
        if req.service in CREATE_ACTION_KEY:
            context = {CREATE_ACTION_KEY[req.service]: req.operation}
        for arn in created:
            implied.append(Pair(TAG_ON_CREATE[req.action], arn, context))
    if req.action in ("autoscaling:CreateAutoScalingGroup", "autoscaling:UpdateAutoScalingGroup"):
        implied.extend(_group_launches(req))
    if req.action == "ec2:RunInstances":
        profile = req.values("IamInstanceProfile.Name") or req.values("IamInstanceProfile.Arn")
        for name in profile[:1]:
            role = req.lookup("instance-profile-role", name.rsplit("/", 1)[-1])
            context = {"iam:PassedToService": "ec2.amazonaws.com"}
            implied.append(Pair("iam:PassRole", role or name, context))
    if req.action == "events:PutTargets":
        # A target with a role: EventBridge assumes it, so the caller must pass it to events.
        for target in req.params.get("Targets", []):
            if target.get("RoleArn"):
                context = {"iam:PassedToService": "events.amazonaws.com"}
                implied.append(Pair("iam:PassRole", target["RoleArn"], context))
    return implied


def _group_launches(req: Request) -> list[Pair]:
    """A group made or changed with a launch template: AWS checks that the caller may launch
    from it (ec2:RunInstances on the template) and pass its instance role to EC2."""
    ids = [
        v
        for k, v in req.params.items()
        if re.fullmatch(r"(MixedInstancesPolicy\.)?LaunchTemplate\.(LaunchTemplateSpecification\.)?"
                        r"LaunchTemplateId", k)
    ]  # fmt: skip
    found = []
    for ident in dict.fromkeys(ids):
        found.append(Pair("ec2:RunInstances", req.ec2_arn("launch-template", ident)))
        role = req.lookup("launch-template-role", ident)
        if role:
            context = {"iam:PassedToService": "ec2.amazonaws.com"}
            found.append(Pair("iam:PassRole", role, context))
    return found


def _member_tags(req: Request) -> dict[str, str]:
    """aws:RequestTag/* of a query-protocol (Tags.member.N) or JSON (Tags: [...]) request."""
    context = {}
    for key, value in req.params.items():
        if re.fullmatch(r"Tags\.member\.\d+\.Key", key):
            context[f"aws:RequestTag/{value}"] = str(req.params.get(key[:-3] + "Value", ""))
    tags = req.params.get("Tags")
    if isinstance(tags, list):
        for tag in tags:
            if isinstance(tag, dict) and "Key" in tag:
                context[f"aws:RequestTag/{tag['Key']}"] = str(tag.get("Value", ""))
    return context


def _request_tags(req: Request, kind: str | None = None) -> dict[str, str]:
    """aws:RequestTag/* of an EC2 request: the tags it puts on a created resource of ``kind``
    (its TagSpecification for that resource type), or on the resources CreateTags names."""
    context = {}
    for key, value in req.params.items():
        spec = re.fullmatch(r"(TagSpecification\.\d+\.)?Tag\.\d+\.Key", key)
        if spec is None:
            continue
        if spec[1] and req.params.get(f"{spec[1]}ResourceType") != kind:
            continue
        context[f"aws:RequestTag/{value}"] = str(req.params.get(key[:-3] + "Value", ""))
    return context


def _with_tags(req: Request, pair: Pair) -> Pair:
    """EC2 (and SSM-on-instance) pairs with the tag condition keys IAM would see: the request's
    tags for what it creates, the resource's own tags for what exists."""
    if pair.resource.startswith(FLEET_ARN_PREFIXES):
        return _with_fleet_tags(req, pair)
    if not pair.resource.startswith("arn:aws:ec2:"):
        return pair
    kind, ident = pair.resource.split(":")[-1].split("/", 1)
    if ident == "*":
        tags = _request_tags(req, kind)
    else:
        found = req.lookup("ec2-tags", ident) or {}
        tags = {f"aws:ResourceTag/{k}": v for k, v in found.items()}
        if req.action == "ec2:CreateTags":
            tags.update(_request_tags(req))
    return Pair(pair.action, pair.resource, {**pair.context, **tags})


FLEET_ARN_PREFIXES = (
    "arn:aws:elasticloadbalancing:",
    "arn:aws:autoscaling:",
    "arn:aws:acm:",
    "arn:aws:cloudwatch:",
)


def _with_fleet_tags(req: Request, pair: Pair) -> Pair:
    """ELB, Auto Scaling, ACM and CloudWatch pairs with the tag keys IAM would see: the request's
    tags for a resource being created (or tagged), the resource's own tags for one that exists."""
    creating = pair.resource.endswith("*") or (
        req.operation in ("CreateAutoScalingGroup", "PutMetricAlarm", "ImportCertificate")
        and req.lookup("tags", pair.resource) is None
    )
    if creating or pair.action.endswith(("AddTags", "CreateOrUpdateTags", "TagResource",
                                         "AddTagsToCertificate")):  # fmt: skip
        tags = _member_tags(req)
    else:
        tags = {}
    if not creating:
        found = req.lookup("tags", pair.resource) or {}
        tags.update({f"aws:ResourceTag/{k}": v for k, v in found.items()})
    return Pair(pair.action, pair.resource, {**pair.context, **tags})


#: S3 requests -> the IAM action S3 authorizes each as (Service Authorization Reference, "Actions
#: defined by Amazon S3"), by method and sub-resource. moto names them inconsistently (API
#: operation names, or CreateBucket for PutBucketEncryption), so the recording server derives the
#: action from the request itself and has moto check that: policies are written in IAM's names.
S3_BUCKET_ACTIONS: dict[str, dict[str, str]] = {
    "": {
        "GET": "ListBucket",
        "HEAD": "ListBucket",
        "PUT": "CreateBucket",
        "DELETE": "DeleteBucket",
    },
    "acl": {"GET": "GetBucketAcl", "PUT": "PutBucketAcl"},
    "cors": {"GET": "GetBucketCORS", "PUT": "PutBucketCORS", "DELETE": "PutBucketCORS"},
    "website": {
        "GET": "GetBucketWebsite",
        "PUT": "PutBucketWebsite",
        "DELETE": "DeleteBucketWebsite",
    },
    "versioning": {"GET": "GetBucketVersioning", "PUT": "PutBucketVersioning"},
    "accelerate": {"GET": "GetAccelerateConfiguration", "PUT": "PutAccelerateConfiguration"},
    "requestPayment": {"GET": "GetBucketRequestPayment", "PUT": "PutBucketRequestPayment"},
    "logging": {"GET": "GetBucketLogging", "PUT": "PutBucketLogging"},
    "notification": {"GET": "GetBucketNotification", "PUT": "PutBucketNotification"},
    "lifecycle": {
        "GET": "GetLifecycleConfiguration",
        "PUT": "PutLifecycleConfiguration",
        "DELETE": "PutLifecycleConfiguration",
    },
    "replication": {
        "GET": "GetReplicationConfiguration",
        "PUT": "PutReplicationConfiguration",
        "DELETE": "PutReplicationConfiguration",
    },
    "encryption": {
        "GET": "GetEncryptionConfiguration",
        "PUT": "PutEncryptionConfiguration",
        "DELETE": "PutEncryptionConfiguration",
    },
    "object-lock": {"GET": "GetBucketObjectLockConfiguration"},
    "policy": {"GET": "GetBucketPolicy", "PUT": "PutBucketPolicy", "DELETE": "DeleteBucketPolicy"},
    "policyStatus": {"GET": "GetBucketPolicyStatus"},
    "tagging": {"GET": "GetBucketTagging", "PUT": "PutBucketTagging", "DELETE": "PutBucketTagging"},
    "publicAccessBlock": {
        "GET": "GetBucketPublicAccessBlock",
        "PUT": "PutBucketPublicAccessBlock",
        "DELETE": "PutBucketPublicAccessBlock",
    },
    "ownershipControls": {
        "GET": "GetBucketOwnershipControls",
        "PUT": "PutBucketOwnershipControls",
        "DELETE": "PutBucketOwnershipControls",
    },
    "location": {"GET": "GetBucketLocation"},
    "versions": {"GET": "ListBucketVersions"},
    "uploads": {"GET": "ListBucketMultipartUploads"},
    "delete": {"POST": "DeleteObject"},  # DeleteObjects: authorized per object
}
S3_OBJECT_ACTIONS: dict[str, dict[str, str]] = {
    "": {"GET": "GetObject", "HEAD": "GetObject", "PUT": "PutObject", "DELETE": "DeleteObject"},
    "tagging": {
        "GET": "GetObjectTagging",
        "PUT": "PutObjectTagging",
        "DELETE": "DeleteObjectTagging",
    },
    "acl": {"GET": "GetObjectAcl", "PUT": "PutObjectAcl"},
    "attributes": {"GET": "GetObjectAttributes"},
    "uploads": {"POST": "PutObject"},
    "uploadId": {
        "GET": "ListMultipartUploadParts",
        "PUT": "PutObject",
        "POST": "PutObject",
        "DELETE": "AbortMultipartUpload",
    },
}
#: With a versionId, S3 authorizes the version's own action.
S3_VERSION_ACTIONS = {
    "GetObject": "GetObjectVersion",
    "DeleteObject": "DeleteObjectVersion",
    "GetObjectTagging": "GetObjectVersionTagging",
    "PutObjectTagging": "PutObjectVersionTagging",
    "DeleteObjectTagging": "DeleteObjectVersionTagging",
    "GetObjectAcl": "GetObjectVersionAcl",
}


def s3_pairs(
    method: str, resource: str, query: Mapping[str, Any], headers: Mapping[str, Any], body: str
) -> tuple[list[Pair], bool]:
    """The pairs IAM authorizes for one S3 request on ``resource`` (the bucket's or object's
    ARN), and whether the request is known. Every SDK call goes over TLS (only the emulator's
    own hop is plain HTTP), so ``aws:SecureTransport`` is true, as a TLS-only bucket policy sees."""
    context = {"aws:SecureTransport": "true"}
    if resource.endswith(":::*"):
        return [Pair("s3:ListAllMyBuckets", "*", context)], method == "GET"
    table = S3_OBJECT_ACTIONS if "/" in resource.split(":::", 1)[1] else S3_BUCKET_ACTIONS
    named = [q for q in query if q in table]
    action = table[named[0] if named else ""].get(method)
    if action is None or len(named) > 1:
        return [Pair(f"s3:{method} {','.join(query)}", resource, context)], False
    if "versionId" in query:
        action = S3_VERSION_ACTIONS.get(action, action)
    if action == "ListBucket" and query.get("prefix"):  # what an s3:prefix condition sees
        prefix = query["prefix"]
        context = {**context, "s3:prefix": prefix[0] if isinstance(prefix, list) else prefix}
    resources = [resource]
    if "delete" in named:
        keys = re.findall(r"<Key>(.*?)</Key>", body)
        resources = [f"{resource}/{html.unescape(k)}" for k in keys]
    found = [Pair(f"s3:{action}", r, context) for r in resources]
    if action == "PutObject" and not named and "x-amz-tagging" in {k.lower() for k in headers}:
        found.append(Pair("s3:PutObjectTagging", resource, context))  # tags set while creating
    return found, True


def pairs(req: Request) -> tuple[list[Pair], bool]:
    """The (action, resource) pairs IAM authorizes for ``req``, and whether the action is known."""
    if req.action in MAPPED:
        keys = {k: v for k, p in REQUEST_KEYS.get(req.action, {}).items() for v in req.values(p)}
        found = [Pair(req.action, arn, keys) for arn in MAPPED[req.action](req)]
    elif UNSCOPED.match(req.action):
        found = [Pair(req.action, "*")]
    else:
        return [Pair(req.action, "*")], False
    return [_with_tags(req, p) for p in found + _implied(req, found)], True
