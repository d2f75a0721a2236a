"""Baked AMIs against moto: CreateImage from an instance, the tags, apply's choice of a matching
image, --list, and deletion that removes the snapshots too."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_emulator import MOTO_DLAMI
from moto_create_image import snapshot_tags_on_create_image
from qwen3vl_aws.errors import UsageError
from qwen3vl_aws.instance import bake
from qwen3vl_aws.instance.channel.base import CommandResult
from qwen3vl_aws.provision import ApplyRequest, prepare
from qwen3vl_aws.serving.versions import pinned_versions


@pytest.fixture
def ec2(aws_env: str) -> Iterator[Any]:
    with snapshot_tags_on_create_image():
        yield boto3.client("ec2", region_name="us-east-1")


@pytest.fixture
def instance_id(ec2: Any) -> str:
    return ec2.run_instances(ImageId=MOTO_DLAMI, MinCount=1, MaxCount=1, InstanceType="g5.xlarge")[
        "Instances"
    ][0]["InstanceId"]


SCHEMA = Path(__file__).resolve().parents[1] / "schemas" / "bake.json"


def tags_of(resource: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("Tags", [])}


def test_bake_tags_the_image_and_its_snapshots_with_the_pins_and_bootstrap(
    ec2: Any, instance_id: str
) -> None:
    image_id = bake.create_image(ec2, instance_id, "vllm", "demo")
    (image,) = ec2.describe_images(ImageIds=[image_id])["Images"]
    tags = tags_of(image)
    assert tags["qwen3vl:vllm_version"] == pinned_versions()["VLLM_VERSION"]
    assert tags["qwen3vl:bootstrap-sha256"] == bake.bootstrap_sha256()
    assert tags["qwen3vl:engine"] == "vllm" and tags["qwen3vl:baked-from"] == "demo"
    snapshots = [m["Ebs"]["SnapshotId"] for m in image["BlockDeviceMappings"] if "Ebs" in m]
    assert snapshots
    for snapshot in ec2.describe_snapshots(SnapshotIds=snapshots)["Snapshots"]:
        assert tags_of(snapshot)["qwen3vl:bootstrap-sha256"] == bake.bootstrap_sha256()
    (listed,) = bake.list_baked(ec2)
    assert listed.image_id == image_id and listed.matches_current_pins
    assert set(listed.snapshots) == set(snapshots)


def test_only_an_image_with_the_current_pins_bootstrap_and_engine_matches(
    ec2: Any, instance_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert bake.matching_image(ec2, "vllm") is None
    image_id = bake.create_image(ec2, instance_id, "vllm", "demo")
    assert bake.matching_image(ec2, "vllm") == image_id
    assert bake.matching_image(ec2, "sglang") is None
    with monkeypatch.context() as m:
        m.setattr(bake, "bootstrap_sha256", lambda: "0" * 64)
        assert bake.matching_image(ec2, "vllm") is None
    with monkeypatch.context() as m:
        newer = {**pinned_versions(), "VLLM_VERSION": "9.9.9"}
        m.setattr(bake, "pinned_versions", lambda: dict(newer))
        assert bake.matching_image(ec2, "vllm") is None
        assert not bake.list_baked(ec2)[0].matches_current_pins


def test_apply_launches_the_matching_baked_image(
    ec2: Any, instance_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from qwen3vl_aws.aws import pricing
    from qwen3vl_aws.aws.clients import ClientFactory
    from qwen3vl_aws.serving.overrides import ServingOverrides

    monkeypatch.setattr(pricing, "hourly_price", lambda *a, **k: None)
    image_id = bake.create_image(ec2, instance_id, "vllm", "demo")
    request = ApplyRequest("demo", "us-east-1", "g5.xlarge", ["203.0.113.7/32"])
    prepared = prepare(ClientFactory(region="us-east-1"), request, ServingOverrides())
    assert prepared.request.terraform_variables()["ami_id"] == image_id
    chosen = ApplyRequest("demo", "us-east-1", "g5.xlarge", ["203.0.113.7/32"], ami_id=MOTO_DLAMI)
    prepared = prepare(ClientFactory(region="us-east-1"), chosen, ServingOverrides())
    assert prepared.request.ami_id == MOTO_DLAMI  # an explicit --ami-id wins


def test_delete_removes_the_image_and_its_snapshots(ec2: Any, instance_id: str) -> None:
    image_id = bake.create_image(ec2, instance_id, "vllm", "demo")
    (baked,) = bake.list_baked(ec2)
    bake.delete_image(ec2, image_id)
    assert ec2.describe_images(Owners=["self"])["Images"] == []
    remaining = {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}
    assert not remaining & set(baked.snapshots)


def test_delete_refuses_an_image_that_is_not_baked_here(ec2: Any) -> None:
    with pytest.raises(UsageError, match="bake --list"):
        bake.delete_image(ec2, MOTO_DLAMI)


class RecordingChannel:
    """The instance as the command channel sees it: a ready status file; records every script."""

    def __init__(self, ready: bool = True) -> None:
        self.scripts: list[str] = []
        self.ready = ready

    def run(self, script: str, timeout: float = 60.0) -> CommandResult:
        self.scripts.append(script)
        if "status.json" in script:
            state = "done" if self.ready else "running"
            stages = [
                {"name": n, "state": state, "started_at": None, "finished_at": None}
                for n in ("packages", "model", "configure", "engine", "ready")
            ]
            return CommandResult(0, json.dumps({"stages": stages}), "")
        return CommandResult(0, "", "")


def test_bake_seals_the_secrets_around_create_image(ec2: Any, instance_id: str) -> None:
    channel = RecordingChannel()
    seen: list[str] = []
    ec2.meta.events.register(
        "before-call.ec2.CreateImage", lambda **_: seen.append(channel.scripts[-1])
    )
    image_id = bake.bake_instance(ec2, channel, instance_id, "vllm", "demo")
    assert seen == [f"{bake.BOOTSTRAP} seal"]  # CreateImage ran while sealed
    assert channel.scripts[-1] == f"{bake.BOOTSTRAP} unseal"
    assert bake.matching_image(ec2, "vllm") == image_id


def test_bake_refuses_an_instance_that_is_not_ready(ec2: Any, instance_id: str) -> None:
    channel = RecordingChannel(ready=False)
    with pytest.raises(UsageError, match="ready"):
        bake.bake_instance(ec2, channel, instance_id, "vllm", "demo")
    assert not any("seal" in s for s in channel.scripts)
    assert bake.list_baked(ec2) == []


def test_bake_list_json_matches_its_schema(ec2: Any, instance_id: str, aws_env: str) -> None:
    import jsonschema
    from click.testing import CliRunner
    from qwen3vl_aws.cli import cli
    from qwen3vl_aws.deployment import Deployment

    Deployment(name="demo", region="us-east-1", instance_type="g5.xlarge").save()
    image_id = bake.create_image(ec2, instance_id, "vllm", "demo")
    result = CliRunner().invoke(cli, ["--name", "demo", "bake", "--list", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    jsonschema.validate(doc, json.loads(SCHEMA.read_text()), cls=jsonschema.Draft202012Validator)
    (listed,) = doc
    assert listed["image_id"] == image_id and listed["matches"] is True


def test_bake_through_the_cli_makes_the_image_apply_will_choose(
    ec2: Any, instance_id: str, aws_env: str
) -> None:
    """`qwen3vl-aws bake --yes` on the recorded deployment: the ready instance is sealed around
    CreateImage over its channel, and the image it prints is the one apply would launch; without
    --yes and no answer it creates nothing."""
    from click.testing import CliRunner
    from qwen3vl_aws.cli import cli
    from qwen3vl_aws.deployment import Deployment

    from rig.cli import app_with_channel

    Deployment(
        name="demo", region="us-east-1", instance_type="g5.xlarge", instance_id=instance_id
    ).save()
    channel = RecordingChannel()
    refused = CliRunner().invoke(cli, ["--name", "demo", "bake"], obj=app_with_channel(channel))
    assert refused.exit_code == 1 and bake.list_baked(ec2) == []
    result = CliRunner().invoke(
        cli, ["--name", "demo", "bake", "--yes"], obj=app_with_channel(channel)
    )
    assert result.exit_code == 0, result.output
    image_id = bake.matching_image(ec2, "vllm")
    assert image_id is not None and f"Baked {image_id}" in result.stdout
    assert [s for s in channel.scripts if "seal" in s] == [
        f"{bake.BOOTSTRAP} seal",
        f"{bake.BOOTSTRAP} unseal",
    ]
