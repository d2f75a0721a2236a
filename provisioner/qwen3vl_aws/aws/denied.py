"""AccessDenied, said usefully: which action on which resource is missing, and where the policy is.

AWS's own message usually names both ("User: X is not authorized to perform: A on resource: R");
some services (and the emulator) leave the resource out. The resource is then taken from the
request itself: :func:`install` registers botocore hooks on a client that remember the request's
resource parameter and attach it to an AccessDenied error before botocore raises it.
"""

from __future__ import annotations

import re
from typing import Any

#: Where a user finds the least-privilege policy the toolkit needs (shipped with the repository).
POLICY_DOC = "docs/iam-policy.json"
DENIED_CODES = frozenset(
    {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError"}
)
_NOT_AUTHORIZED = re.compile(
    r"not authorized to perform:?\s*(?P<action>[\w-]+:\w+)(?:\s+on resource:?\s*(?P<resource>\S+))?"
)
#: Request parameters that name the resource an action is for, in order of preference.
RESOURCE_PARAMS = (
    "SecretId",
    "InstanceIds",
    "InstanceId",
    "RoleName",
    "InstanceProfileName",
    "GroupId",
    "AllocationId",
    "Name",
    "Names",
)
_ERROR_KEY = "QwenRequestResource"
_ACTION_KEY = "QwenRequestAction"


def _resource_of(params: dict[str, Any]) -> str | None:
    for name in RESOURCE_PARAMS:
        value = params.get(name)
        if value:
            return ", ".join(map(str, value)) if isinstance(value, list) else str(value)
    return None


def _remember(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    context[_ERROR_KEY] = _resource_of(params)


def _attach(parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
    error = parsed.get("Error")
    if error is not None:
        error[_ACTION_KEY] = f"{model.service_model.signing_name}:{model.name}"
        if context.get(_ERROR_KEY):
            error[_ERROR_KEY] = context[_ERROR_KEY]


def install(client: Any) -> Any:
    """Make ``client``'s AccessDenied errors carry the resource their request named."""
    client.meta.events.register("before-parameter-build", _remember)
    client.meta.events.register("after-call", _attach)
    return client


def denied(response: dict[str, Any], operation: str) -> tuple[str, str | None] | None:
    """(action, resource) when ``response`` (a ClientError's, for ``operation``) is an
    AccessDenied, else None. The resource is None when neither AWS nor the request named one."""
    error = response.get("Error", {})
    code = str(error.get("Code", ""))
    message = str(error.get("Message", ""))
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    match = _NOT_AUTHORIZED.search(message)
    if code not in DENIED_CODES and not (status == 403 and match):
        return None
    action = match["action"] if match else error.get(_ACTION_KEY, operation)
    resource = (match and match["resource"]) or error.get(_ERROR_KEY)
    return action, resource.rstrip(".") if resource else None


def denied_message(doing: str, action: str, resource: str | None) -> str:
    target = f" on {resource}" if resource else ""
    return (
        f"{doing}: AWS denied {action}{target}. Your AWS identity lacks that permission: "
        f"{POLICY_DOC} in the qwen3vl-aws repository is the least-privilege policy the toolkit "
        "needs; attach it (or its missing statement) to your user or role."
    )


#: What Terraform's AWS provider prints when a call is denied.
_TERRAFORM_DENIED = re.compile(r"AccessDenied|UnauthorizedOperation|not authorized to perform")


def terraform_hint(output: str) -> str:
    """A pointer to the policy when Terraform's output shows a denied call, else ''."""
    if not _TERRAFORM_DENIED.search(output):
        return ""
    found = _NOT_AUTHORIZED.search(output)
    what = "an AWS action"
    if found:
        what = found["action"] + (f" on {found['resource']}" if found["resource"] else "")
    return (
        f"\nAWS denied {what}: {POLICY_DOC} in the qwen3vl-aws repository is the least-privilege "
        "policy the toolkit needs; attach it to your user or role."
    )
