"""moto in its own process, IAM enforced, every request recorded.

``python -m rig.iam.server PORT RECORD_FILE`` serves moto on 127.0.0.1:PORT. Its own process,
because moto keeps its backends and its enforcement switch (``INITIAL_NO_AUTH_ACTION_COUNT``)
process-wide: the shared, non-enforcing session emulator of the other tests must not change.
Enforcement is switched with moto's own ``/moto-api/reset-auth`` (``0`` on, ``inf`` off).

Each request appends one JSON line to RECORD_FILE: the caller's access key id, the action,
whether enforcement was on and whether moto allowed it, and the (action, resource, context)
pairs :mod:`rig.iam.arns` derives, which the scoping check evaluates against the real policies.
"""

from __future__ import annotations

import json
import re
import signal
import sys
import threading
from dataclasses import asdict
from typing import Any

from rig.iam.arns import IAM_PREFIX, Request, pairs, s3_pairs

_lock = threading.Lock()


def _params(response: Any) -> dict[str, Any]:
    body = response.body
    if isinstance(body, bytes):
        body = body.decode(errors="replace")
    if isinstance(body, str) and body.lstrip().startswith("{"):
        return json.loads(body)
    return {
        k: v[0] if isinstance(v, list) and len(v) == 1 else v
        for k, v in response.querystring.items()
    }


def _lookup(account: str, region: str):
    """(kind, name) -> the ARN (or, for "ec2-tags", the tags) of an existing resource in the
    emulator, else None."""
    from moto.ec2.models import ec2_backends
    from moto.iam.models import iam_backends
    from moto.secretsmanager.models import secretsmanager_backends

    def lookup(kind: str, name: str) -> str | None:
        iam = iam_backends[account]["aws"]
        try:
            if kind == "secret":
                return secretsmanager_backends[account][region].secrets[name].arn
            if kind == "role":
                return iam.get_role(name).arn
            if kind == "instance-profile":
                return iam.get_instance_profile(name).arn
            if kind == "ec2-tags":
                return dict(ec2_backends[account][region].tags.get(name, {}))
            if kind == "instance-profile-role":
                return iam.get_instance_profile(name).roles[0].arn
            if kind == "tags":
                return _fleet_tags(account, region, name)
            if kind == "launch-template-role":
                template = ec2_backends[account][region].get_launch_template(name)
                profile = template.latest_version().data["IamInstanceProfile"]
                return iam.get_instance_profile(profile["Name"]).roles[0].arn
        except Exception:  # not there (yet): the caller builds the ARN from the name
            return None
        raise ValueError(kind)

    return lookup


def _fleet_tags(account: str, region: str, arn: str) -> dict[str, str] | None:
    """The tags of an existing load balancer piece, group, certificate or alarm (None: absent)."""
    service = arn.split(":")[2]
    if service == "elasticloadbalancing":
        from moto.elbv2.models import elbv2_backends

        tags = elbv2_backends[account][region].tagging_service.get_tag_dict_for_resource(arn)
        return tags or None
    if service == "acm":
        from moto.acm.models import acm_backends

        return dict(acm_backends[account][region].get_certificate(arn).tags)
    if service == "cloudwatch":
        from moto.cloudwatch.models import cloudwatch_backends

        backend = cloudwatch_backends[account][region]
        if arn.rsplit(":", 1)[-1] not in backend.alarms:
            return None
        return backend.tagger.get_tag_dict_for_resource(arn)
    if service == "autoscaling":
        from moto.autoscaling.models import autoscaling_backends

        name = arn.rsplit("/", 1)[-1]
        group = autoscaling_backends[account][region].autoscaling_groups[name]
        return {t["Key"]: t["Value"] for t in group.tags}
    raise ValueError(arn)


def _scope(response: Any) -> tuple[str, str, str]:
    """The signer's access key id, region and service from the Authorization header."""
    scope = re.search(r"Credential=([^/]+)/\d+/([^/]+)/([^/]+)/", response.headers["Authorization"])
    return scope.groups() if scope else ("", response.region, "")


def describe(response: Any) -> dict[str, Any]:
    """The record of one request (before moto handles it, so deleted things still resolve)."""
    key, region, service = _scope(response)
    operation = response._get_action()
    account = response.current_account
    req = Request(service, operation, _params(response), account, region, _lookup(account, region))
    found, mapped = pairs(req)
    return {
        "access_key": key,
        "action": req.action,
        "mapped": mapped,
        "pairs": [asdict(p) for p in found],
        "params": sorted(req.params),
    }


def describe_s3(response: Any, resource: str) -> dict[str, Any]:
    """The record of one S3 request on ``resource``, its action in IAM's name."""
    body = response.body
    if isinstance(body, bytes):
        body = body.decode(errors="replace")
    headers = dict(response.headers.items())
    found, mapped = s3_pairs(response.method, resource, response.querystring, headers, body or "")
    return {
        "access_key": _scope(response)[0],
        "action": found[0].action,
        "mapped": mapped,
        "pairs": [asdict(p) for p in found],
        "params": sorted(response.querystring),
    }


def _write(record_path: str, entry: dict[str, Any]) -> None:
    with _lock, open(record_path, "a") as out:
        out.write(json.dumps(entry) + "\n")


def install_recorder(record_path: str) -> None:
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin
    from moto.utilities.utils import get_partition

    original = ActionAuthenticatorMixin._authenticate_and_authorize_normal_action
    original_s3 = ActionAuthenticatorMixin._authenticate_and_authorize_s3_action

    def recording(self: Any, resource: str = "*") -> None:
        enforced = ActionAuthenticatorMixin.request_count >= settings.INITIAL_NO_AUTH_ACTION_COUNT
        try:
            entry = describe(self) if "Authorization" in self.headers else None
        except Exception as exc:  # a broken derivation must show, not pass silently
            entry = {"action": "?", "mapped": False, "pairs": [], "error": repr(exc)}
        allowed = True
        try:
            original(self, resource)
        except Exception:
            allowed = False
            raise
        finally:
            if entry is not None:
                entry.update(enforced=enforced, allowed=allowed)
                _write(record_path, entry)

    def recording_s3(self: Any, bucket_name: str | None = None, key_name: str | None = None):
        """S3: moto would check its own name for the request (CreateBucket for a
        PutBucketEncryption); it checks the IAM action S3 really authorizes instead."""
        enforced = ActionAuthenticatorMixin.request_count >= settings.INITIAL_NO_AUTH_ACTION_COUNT
        path = f"{bucket_name or '*'}/{key_name}" if key_name else (bucket_name or "*")
        resource = f"arn:{get_partition(self.region)}:s3:::{path}"
        entry = describe_s3(self, resource) if "Authorization" in self.headers else None
        if entry is not None:
            iam_action = entry["action"].split(":", 1)[1]
            self._get_action = lambda: iam_action  # this request's instance only
        allowed = True
        try:
            original_s3(self, bucket_name, key_name)
        except Exception:
            allowed = False
            raise
        finally:
            self.__dict__.pop("_get_action", None)
            if entry is not None:
                entry.update(enforced=enforced, allowed=allowed)
                _write(record_path, entry)

    ActionAuthenticatorMixin._authenticate_and_authorize_normal_action = recording
    _authorize_iam_prefixes()
    ActionAuthenticatorMixin._authenticate_and_authorize_s3_action = recording_s3


def _authorize_iam_prefixes() -> None:
    """moto names the action by the request's signing name; IAM by the service's prefix, which
    differs for CloudWatch ("monitoring" signs cloudwatch:PutMetricAlarm). Check IAM's name."""
    from moto.iam.access_control import IAMRequestBase

    original = IAMRequestBase.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        service, _, action = self._action.partition(":")
        self._action = f"{IAM_PREFIX.get(service, service)}:{action}"

    IAMRequestBase.__init__ = init


def main(argv: list[str]) -> None:
    port, record_path = int(argv[0]), argv[1]
    from moto.server import ThreadedMotoServer

    from rig.moto_bucket_policy import conditional_bucket_statements_left_to_the_tests
    from rig.moto_fidelity import keep_fleet_settings, keep_gp3_performance

    install_recorder(record_path)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with (
        keep_gp3_performance(),
        keep_fleet_settings(),
        conditional_bucket_statements_left_to_the_tests(),
    ):
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        try:
            stop.wait()
        finally:
            server.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
