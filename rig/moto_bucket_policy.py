"""Close one gap between moto and S3 that would otherwise deny every object request.

moto evaluates a bucket policy on object requests, but ignores every condition operator other
than StringEquals, so a conditional Deny (TLS only, create-only writes) applies to every request,
allowed ones included. While this patch is active, moto skips bucket-policy statements that carry
conditions; the tests evaluate those statements themselves on the calls really made
(``rig.s3_policy``, ``rig.iam.policy``), with the request's real context. The enforcing server
(``rig.iam.server``) runs with it on.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def conditional_bucket_statements_left_to_the_tests() -> Iterator[None]:
    from moto.iam.access_control import IAMPolicy, PermissionResult
    from moto.s3.models import FakeBucket

    original = FakeBucket.get_permission

    def get_permission(self: FakeBucket, action: str, resource: str) -> Any:
        if self.policy is None:
            return PermissionResult.NEUTRAL
        policy = json.loads(self.policy)
        statements = policy["Statement"]
        statements = statements if isinstance(statements, list) else [statements]
        policy["Statement"] = [s for s in statements if "Condition" not in s]
        if not policy["Statement"]:
            return PermissionResult.NEUTRAL
        return IAMPolicy(json.dumps(policy)).is_action_permitted(action, resource)

    FakeBucket.get_permission = get_permission
    try:
        yield
    finally:
        FakeBucket.get_permission = original
