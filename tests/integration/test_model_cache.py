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
import httpx
import pytest
import requests
from aws_emulator import MOTO_DLAMI, REGION, Emulator
from qwen3vl_aws.aws.model_cache import bucket_name, ensure_bucket, model_url
from qwen3vl_aws.aws.terraform import Terraform
from qwen3vl_aws.serving.planner import plan_serving

from rig import modelcache
from rig.engine_unit import (
    engine_file_env,
    engine_settings,
    render_engine,
    run_exec_start_pre,
    start_engine_unit,
)
from rig.iam.check import out_of_scope, unmapped
from rig.iam.check import refused as refused_by_moto
from rig.iam.emulator import Credentials
from rig.iam.policy import evaluate, operator_policy
from rig.moto_bucket_policy import conditional_bucket_statements_left_to_the_tests
from rig.net import free_port
from rig.s3_policy import Recorder, refused
from rig.streamer import streamer_pythonpath
from rig.vllm import RIG_INSTANCE_TYPE, VllmRigError, build_tiny_model, cpu_engine_args

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


# --- the engine streams from the cache with the reader role --------------------------------

#: The rig's tiny model, under its own model id so its reader role is its own.
TINY_ID = "rig/tiny-qwen3-vl"


@pytest.fixture(scope="module")
def reader(cache: Cache, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A deployment of the tiny model with the cache: Terraform's instance role (its cache
    policy) and reader role; the tiny model filled into the cache (by the tests, as the owner)."""
    work = tmp_path_factory.mktemp("stream-itest")
    tf = Terraform(cache.emulator.home / "stream-itest")
    tf.prepare(
        {
            "name": "stream-itest",
            "region": REGION,
            "allowed_cidrs": ["203.0.113.7/32"],
            "ami_id": MOTO_DLAMI,
            "model_id": TINY_ID,
            "model_cache_bucket": cache.bucket,
            "model_revision": REVISION,
        }
    )
    with pytest.MonkeyPatch.context() as mp:
        for name, value in cache.emulator.env.items():
            mp.setenv(name, value)
        tf.apply(targets=["aws_iam_role_policy.model_cache", "aws_iam_role_policy.model_reader"])
        resources = tf.resources()
    try:
        tiny = build_tiny_model(work / "tiny")
    except VllmRigError as exc:
        pytest.fail(str(exc), pytrace=False)
    modelcache.load().fill(cache.admin("s3"), tiny, model_url(cache.bucket, TINY_ID, REVISION))
    return {
        "instance_role": resources["aws_iam_role.this"]["name"],
        "instance_role_arn": resources["aws_iam_role.this"]["arn"],
        "reader_role": resources["aws_iam_role.model_reader[0]"]["name"],
        "reader_role_arn": resources["aws_iam_role.model_reader[0]"]["arn"],
    }


def _session_file(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines())


@pytest.mark.node
def test_engine_streams_its_revision_with_the_reader_role_and_nothing_more(
    cache: Cache, reader: dict[str, str], tmp_path: Path
) -> None:
    """The whole path as the instance runs it: engine.env rendered by the real bootstrap, the
    unit's ExecStartPre run with the instance role's credentials (it takes a session of the
    reader role), then the unit's ExecStart (qwen3vl-engine) serving the tiny model straight
    from the emulated S3 through the real Run:ai streamer, with only that session. Every call
    of both is judged against the real documents Terraform made."""
    aws = cache.emulator.iam
    plan = plan_serving(RIG_INSTANCE_TYPE)
    root = tmp_path / "instance"
    # What the model stage records once it finds the cache filled (its own test:
    # tests/static/test_bootstrap_s3_cache.py); render then points the engine at S3.
    status = root / "var/lib/qwen3vl/status.json"
    status.parent.mkdir(parents=True)
    status.write_text(json.dumps({"weights": {"source": "s3-stream", "bytes": 0, "seconds": 0}}))
    render_engine(
        root,
        engine_settings(
            plan.model_id,
            free_port(),
            " ".join(cpu_engine_args(plan.flags)),
            MODEL_ID=TINY_ID,
            MODEL_CACHE_BUCKET=cache.bucket,
            MODEL_REVISION=REVISION,
            MODEL_READER_ROLE_ARN=reader["reader_role_arn"],
            MAX_IMAGE_PIXELS=str(plan.max_decoded_pixels),
        ),
    )
    unit = engine_file_env(root)
    assert unit["ENGINE_ARGS"].startswith(f"--model {model_url(cache.bucket, TINY_ID, REVISION)} ")
    session_file = Path(unit["ENGINE_S3_CREDENTIALS"])
    session_file.parent.mkdir(mode=0o700, parents=True)  # the unit's RuntimeDirectory
    endpoint = {"AWS_ENDPOINT_URL": cache.emulator.url}
    instance = aws.assume_role(reader["instance_role_arn"], "i-0123456789abcdef0")
    with (
        aws.resources_widened(reader["instance_role"]) as instance_documents,
        aws.resources_widened(reader["reader_role"]) as reader_documents,
        aws.trusting_session(
            reader["reader_role"], reader["instance_role_arn"], "i-0123456789abcdef0"
        ),
    ):
        run_exec_start_pre(root, {**endpoint, **instance.env()})
        session = _session_file(session_file)
        assert session_file.stat().st_mode & 0o077 == 0
        engine_env = {
            **endpoint,
            "PYTHONPATH": streamer_pythonpath(unit["PYTHONPATH"]),
        }
        with start_engine_unit(root, tmp_path / "engine.log", engine_env) as server:
            answer = httpx.post(
                f"{server.base_url}/v1/chat/completions",
                json={
                    "model": server.served_model_name,
                    "messages": [{"role": "user", "content": "Hi"}],
                    "max_tokens": 3,
                    "temperature": 0,
                },
                timeout=120,
            )
        log = server.log_path.read_text()
        reader_session = Credentials.from_env(session)
        secrets = aws.client("secretsmanager", reader_session)
        with pytest.raises(secrets.exceptions.ClientError) as denied:
            secrets.list_secrets()
    assert answer.status_code == 200, answer.text
    assert answer.json()["usage"]["completion_tokens"] == 3
    assert "Loading safetensors using Runai Model Streamer: 100%" in log
    assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403  # moto's AccessDenied

    streamed = aws.records(reader_session)
    objects = {p["resource"] for e in streamed for p in e["pairs"] if p["action"] == "s3:GetObject"}
    prefix = f"arn:aws:s3:::{cache.bucket}/models/{TINY_ID}/{REVISION}/"
    assert prefix + "model.safetensors" in objects and prefix + "config.json" in objects
    # Every call of the engine within the reader role as written (the secret listing aside,
    # which moto refused above), and every call of the ExecStartPre within the instance role.
    engine_calls = [e for e in streamed if not e["action"].startswith("secretsmanager:")]
    assert unmapped(engine_calls) == [] and refused_by_moto(engine_calls) == []
    assert out_of_scope(engine_calls, reader_documents) == []
    handed = aws.records(instance)
    assert [(e["action"], e["pairs"][0]["resource"]) for e in handed] == [
        ("sts:AssumeRole", reader["reader_role_arn"])
    ]
    assert out_of_scope(handed, instance_documents) == []


def test_reader_role_trusts_only_the_instance_role_and_reads_only_its_revision(
    cache: Cache, reader: dict[str, str]
) -> None:
    """What moto does not check: the trust policy's principal, the resource scope, the prefix
    condition and the session length."""
    role = cache.admin("iam").get_role(RoleName=reader["reader_role"])["Role"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"AWS": reader["instance_role_arn"]}
    assert role["MaxSessionDuration"] == 3600
    documents = list(cache.emulator.iam.role_documents(reader["reader_role"]).values())
    bucket = f"arn:aws:s3:::{cache.bucket}"
    mine = f"models/{TINY_ID}/{REVISION}/"
    verdicts = {
        name: evaluate(documents, action, resource, context).allowed
        for name, (action, resource, context) in {
            "read own revision": ("s3:GetObject", f"{bucket}/{mine}model.safetensors", {}),
            "list own revision": ("s3:ListBucket", bucket, {"s3:prefix": mine}),
            "read another revision": (
                "s3:GetObject",
                f"{bucket}/models/{TINY_ID}/{OTHER_REVISION}/config.json",
                {},
            ),
            "list the bucket": ("s3:ListBucket", bucket, {"s3:prefix": "models/"}),
            "read a compile cache": ("s3:GetObject", f"{bucket}/compile-cache/x.tar.gz", {}),
            "write own revision": ("s3:PutObject", f"{bucket}/{mine}x", {}),
            "read the API key": ("secretsmanager:GetSecretValue", "*", {}),
        }.items()
    }
    assert verdicts == {
        "read own revision": True,
        "list own revision": True,
        "read another revision": False,
        "list the bucket": False,
        "read a compile cache": False,
        "write own revision": False,
        "read the API key": False,
    }


def test_every_operator_call_of_the_cache_stacks_is_within_docs_iam_policy(
    cache: Cache, reader: dict[str, str]
) -> None:
    """The bucket stack and the deployment's cache roles (the reader role included) were applied
    by Terraform as the operator; each (action, resource) it was authorized against, evaluated
    against docs/iam-policy.json as written (moto only matched actions)."""
    aws = cache.emulator.iam
    operator = cache.emulator.env["AWS_ACCESS_KEY_ID"]
    calls = [r for r in aws.records() if r.get("access_key") == operator]
    created = [p["resource"] for c in calls for p in c["pairs"] if p["action"] == "iam:CreateRole"]
    assert any(r.endswith(reader["reader_role"]) for r in created), created
    assert refused_by_moto(calls) == [] and unmapped(calls) == []
    assert out_of_scope(calls, [operator_policy()]) == []
