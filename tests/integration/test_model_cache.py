"""The S3 model cache against moto: the bucket stack applied with real Terraform, and the cache
filled by the instance's own script with the instance role's credentials under IAM enforcement.

The assumed role holds exactly the policy Terraform made. For S3, moto matches a request against
its real bucket or object ARN (other services see Resource ``*``), but it ignores conditions other
than StringEquals; so every call the script made is also evaluated against the real documents
(role policy and bucket policy, conditions included) by ``rig.s3_policy``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from aws_emulator import MOTO_DLAMI, REGION, Emulator
from qwen3vl_aws.aws.model_cache import bucket_name, ensure_bucket, model_url
from qwen3vl_aws.aws.terraform import Terraform

from rig import modelcache
from rig.moto_bucket_policy import conditional_bucket_statements_left_to_the_tests
from rig.s3_policy import Recorder, refused

pytestmark = pytest.mark.slow

MODEL_ID = "Qwen/Qwen3-VL-8B-Instruct"
REVISION = "0123456789abcdef0123456789abcdef01234567"
OTHER_REVISION = "f" * 40


@dataclass
class Cache:
    emulator: Emulator
    bucket: str
    role_name: str
    role_policy: dict[str, Any]  # the real, resource-scoped document Terraform created
    bucket_policy: dict[str, Any]
    standin_keys: dict[str, str]

    def admin(self, service: str) -> Any:
        return self.emulator.client(service)

    @contextmanager
    def as_instance_role(self) -> Iterator[Any]:
        """An S3 client with the role's assumed credentials while moto enforces IAM."""
        url = self.emulator.url
        requests.post(f"{url}/moto-api/reset-auth", data="0", timeout=10).raise_for_status()
        try:
            sts = boto3.client("sts", region_name=REGION, endpoint_url=url, **self.standin_keys)
            creds = sts.assume_role(
                RoleArn=self.admin_role_arn, RoleSessionName="i-0123456789abcdef0"
            )["Credentials"]
            yield boto3.client(
                "s3",
                region_name=REGION,
                endpoint_url=url,
                aws_access_key_id=creds["AccessKeyId"],
                aws_secret_access_key=creds["SecretAccessKey"],
                aws_session_token=creds["SessionToken"],
            )
        finally:
            requests.post(f"{url}/moto-api/reset-auth", data="inf", timeout=10).raise_for_status()

    admin_role_arn: str = ""


def _apply_role_policy(emulator: Emulator, bucket: str) -> Terraform:
    """The deployment root module, applied only as far as the instance role's cache policy."""
    tf = Terraform(emulator.home / "cache-itest")
    tf.prepare(
        {
            "name": "cache-itest",
            "region": REGION,
            "allowed_cidrs": ["203.0.113.7/32"],
            "ami_id": MOTO_DLAMI,
            "model_id": MODEL_ID,
            "model_cache_bucket": bucket,
            "model_revision": REVISION,
        }
    )
    tf.apply(targets=["aws_iam_role_policy.model_cache"])
    return tf


@pytest.fixture(scope="module")
def cache(emulator: Emulator) -> Iterator[Cache]:
    with conditional_bucket_statements_left_to_the_tests():
        yield from _cache(emulator)


def _cache(emulator: Emulator) -> Iterator[Cache]:
    with pytest.MonkeyPatch.context() as mp:
        for name, value in emulator.env.items():
            mp.setenv(name, value)
        bucket = ensure_bucket(REGION, home=emulator.home)
        role_name = _apply_role_policy(emulator, bucket).resources()["aws_iam_role.this"]["name"]
    iam = emulator.client("iam")
    role_policy = iam.get_role_policy(RoleName=role_name, PolicyName="model-cache")
    real = role_policy["PolicyDocument"]
    # A stand-in for EC2: a user allowed to assume roles.
    user = iam.create_user(UserName="ec2-standin")["User"]
    iam.put_user_policy(
        UserName="ec2-standin",
        PolicyName="assume",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}],
            }
        ),
    )
    key = iam.create_access_key(UserName="ec2-standin")["AccessKey"]
    # EC2 stands in as that user: moto cannot evaluate a Service principal next to an AWS one,
    # so the trust policy names the user alone (the role's permissions stay as Terraform made them).
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": user["Arn"]}, "Action": "sts:AssumeRole"}
        ],
    }
    iam.update_assume_role_policy(RoleName=role_name, PolicyDocument=json.dumps(trust))
    bucket_policy = json.loads(emulator.client("s3").get_bucket_policy(Bucket=bucket)["Policy"])
    found = Cache(
        emulator,
        bucket,
        role_name,
        real,
        bucket_policy,
        {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]},
    )
    found.admin_role_arn = iam.get_role(RoleName=role_name)["Role"]["Arn"]
    yield found


def test_bucket_is_named_for_account_and_region(cache: Cache) -> None:
    account = cache.admin("sts").get_caller_identity()["Account"]
    assert cache.bucket == f"qwen3vl-models-{account}-{REGION}" == bucket_name(account, REGION)


def test_bucket_is_encrypted_private_versioned_and_expires_old_versions(cache: Cache) -> None:
    s3 = cache.admin("s3")
    rules = s3.get_bucket_encryption(Bucket=cache.bucket)["ServerSideEncryptionConfiguration"]
    assert rules["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    block = s3.get_public_access_block(Bucket=cache.bucket)["PublicAccessBlockConfiguration"]
    assert block == dict.fromkeys(
        ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"), True
    )
    assert s3.get_bucket_versioning(Bucket=cache.bucket)["Status"] == "Enabled"
    (rule,) = s3.get_bucket_lifecycle_configuration(Bucket=cache.bucket)["Rules"]
    assert rule["Status"] == "Enabled"
    assert rule["NoncurrentVersionExpiration"]["NoncurrentDays"] > 0


def test_tls_only_policy_is_present(cache: Cache) -> None:
    deny = [
        s
        for s in cache.bucket_policy["Statement"]
        if s["Effect"] == "Deny"
        and s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
    ]
    assert deny, cache.bucket_policy
    arn = f"arn:aws:s3:::{cache.bucket}"
    assert deny[0]["Action"] == "s3:*"
    assert sorted(deny[0]["Resource"]) == [arn, f"{arn}/*"]


def _model_dir(tmp_path: Path) -> Path:
    model = tmp_path / "model"
    (model / "sub").mkdir(parents=True)
    (model / "config.json").write_text('{"architectures": ["Qwen3VLForConditionalGeneration"]}')
    (model / "model.safetensors").write_bytes(b"\0" * 4096)
    (model / "sub" / "tokenizer.json").write_text("{}")
    (model / ".qwen3vl-complete").touch()  # the bootstrap's own marker: not uploaded
    return model


def test_fill_as_instance_role_works_once_and_every_call_is_in_policy(
    cache: Cache, tmp_path: Path
) -> None:
    script = modelcache.load()
    url = model_url(cache.bucket, MODEL_ID, REVISION)
    recorder = Recorder()
    with cache.as_instance_role() as s3:
        recorder.attach(s3)
        assert script.probe(s3, url) is None
        result = script.fill(s3, _model_dir(tmp_path), url)
        manifest = script.probe(s3, url)
        with pytest.raises(script.AlreadyFilled):
            script.fill(s3, _model_dir(tmp_path / "again"), url)
    assert result["files"] == 3 and result["bytes"] == manifest["bytes"]
    assert sorted(manifest["files"]) == ["config.json", "model.safetensors", "sub/tokenizer.json"]
    puts = [p for name, p in recorder.operations if name == "PutObject"]
    assert len(puts) == 4 and all(p["IfNoneMatch"] == "*" for p in puts)
    assert refused(recorder.calls(), cache.role_policy, cache.bucket_policy) == []


def test_a_racing_second_filler_is_refused_by_s3_itself(cache: Cache, tmp_path: Path) -> None:
    """Two fillers past the probe at once: the loser's first create-only PUT fails with 412 and
    it writes nothing. (Script logic against S3's conditional write; as the bucket owner, since
    the role may write only its own revision, which the test above has filled.)"""
    script = modelcache.load()
    s3 = cache.admin("s3")
    prefix = f"models/{MODEL_ID}/{OTHER_REVISION}/"
    s3.put_object(Bucket=cache.bucket, Key=prefix + "config.json", Body=b"{}", IfNoneMatch="*")
    with pytest.raises(script.AlreadyFilled, match="already exists"):
        script.fill(s3, _model_dir(tmp_path), f"s3://{cache.bucket}/{prefix}")
    listed = s3.list_objects_v2(Bucket=cache.bucket, Prefix=prefix)["Contents"]
    assert [o["Key"] for o in listed] == [prefix + "config.json"]


def test_role_is_denied_what_its_policy_lacks(cache: Cache) -> None:
    """moto enforces actions: deleting a cached file is refused to the instance role."""
    with cache.as_instance_role() as s3, pytest.raises(s3.exceptions.ClientError) as denied:
        s3.delete_object(Bucket=cache.bucket, Key=f"models/{MODEL_ID}/{REVISION}/config.json")
    assert denied.value.response["Error"]["Code"] == "AccessDenied"


def test_real_policy_refuses_overwrites_and_other_revisions(cache: Cache) -> None:
    """What moto cannot check: the resource scope and the create-only condition."""
    from rig.s3_policy import call_of

    key = f"models/{MODEL_ID}/{REVISION}/config.json"
    calls = {
        "overwrite": call_of("PutObject", {"Bucket": cache.bucket, "Key": key}),
        "other revision": call_of(
            "PutObject",
            {
                "Bucket": cache.bucket,
                "Key": f"models/{MODEL_ID}/{OTHER_REVISION}/config.json",
                "IfNoneMatch": "*",
            },
        ),
        "other model": call_of(
            "GetObject", {"Bucket": cache.bucket, "Key": f"models/other/{REVISION}/config.json"}
        ),
        "plain http": call_of(
            "GetObject", {"Bucket": cache.bucket, "Key": key}, secure_transport=False
        ),
    }
    verdicts = {
        name: verdict
        for name, (_, verdict) in zip(
            calls,
            [refused([c], cache.role_policy, cache.bucket_policy)[0] for c in calls.values()],
            strict=True,
        )
    }
    assert verdicts == {
        "overwrite": "denied",
        "other revision": "implicit-deny",
        "other model": "implicit-deny",
        "plain http": "denied",
    }
