"""Baked AMIs: the engine environment already installed, so a new instance skips the packages.

``bake`` makes an image of a ready instance with CreateImage and tags it with the pins
(``userdata/versions.env``) and the sha256 of the bootstrap script. ``apply`` launches a baked
image whose tags match the current pins and bootstrap; the bootstrap then finds its venvs'
pin stamps in place and the packages stage does nothing. Secrets never enter the image: the
instance seals them first (``qwen3vl-bootstrap seal`` moves the key file, the TLS key and the
status record to tmpfs, where the running gateway does not need them), CreateImage is called
without a reboot after a ``sync``, and ``unseal`` moves them back.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

from ..aws.clients import aws_errors
from ..errors import UsageError
from ..paths import userdata_dir
from ..serving.versions import pinned_versions

TAG_PREFIX = "qwen3vl:"
BAKED = f"{TAG_PREFIX}baked"
BOOTSTRAP_TAG = f"{TAG_PREFIX}bootstrap-sha256"
ENGINE_TAG = f"{TAG_PREFIX}engine"


def bootstrap_sha256() -> str:
    """The sha256 of the bootstrap script that the image was baked with."""
    return hashlib.sha256((userdata_dir() / "bin" / "qwen3vl-bootstrap").read_bytes()).hexdigest()


def image_tags(engine: str, deployment: str) -> dict[str, str]:
    """Every tag that a baked image carries; the pins and the bootstrap hash decide a match."""
    tags = {
        "Project": "qwen3vl-aws",
        BAKED: "true",
        ENGINE_TAG: engine,
        BOOTSTRAP_TAG: bootstrap_sha256(),
        f"{TAG_PREFIX}baked-from": deployment,
    }
    tags.update({f"{TAG_PREFIX}{k.lower()}": v for k, v in pinned_versions().items()})
    return tags


def matching_filters(engine: str) -> list[dict[str, Any]]:
    """DescribeImages filters for an image baked with these pins, this bootstrap and engine."""
    wanted = image_tags(engine, deployment="")
    wanted.pop(f"{TAG_PREFIX}baked-from")
    return [{"Name": f"tag:{k}", "Values": [v]} for k, v in sorted(wanted.items())]


@dataclass(frozen=True)
class BakedImage:
    image_id: str
    name: str
    created: str
    state: str
    snapshots: tuple[str, ...]
    tags: dict[str, str]

    @property
    def matches_current_pins(self) -> bool:
        current = image_tags(self.tags.get(ENGINE_TAG, ""), deployment="")
        return all(self.tags.get(k) == v for k, v in current.items() if not k.endswith("from"))


def _baked(image: dict[str, Any]) -> BakedImage:
    return BakedImage(
        image_id=image["ImageId"],
        name=image.get("Name", ""),
        created=image.get("CreationDate", ""),
        state=image.get("State", ""),
        snapshots=tuple(
            m["Ebs"]["SnapshotId"]
            for m in image.get("BlockDeviceMappings", [])
            if m.get("Ebs", {}).get("SnapshotId")
        ),
        tags={t["Key"]: t["Value"] for t in image.get("Tags", [])},
    )


def list_baked(ec2: Any) -> list[BakedImage]:
    """This account's baked images in the client's region, newest first."""
    with aws_errors("Listing baked images"):
        images = ec2.describe_images(
            Owners=["self"], Filters=[{"Name": f"tag:{BAKED}", "Values": ["true"]}]
        )["Images"]
    return sorted((_baked(i) for i in images), key=lambda b: b.created, reverse=True)


def matching_image(ec2: Any, engine: str) -> str | None:
    """The newest available baked image for these pins, bootstrap and engine (None: none)."""
    with aws_errors("Looking for a baked image"):
        images = ec2.describe_images(
            Owners=["self"],
            Filters=[*matching_filters(engine), {"Name": "state", "Values": ["available"]}],
        )["Images"]
    newest = max(images, key=lambda i: i.get("CreationDate", ""), default=None)
    return None if newest is None else newest["ImageId"]


def start_image(ec2: Any, instance_id: str, engine: str, deployment: str) -> str:
    """CreateImage without a reboot (the caller sealed and synced the disk), with the tags on the
    image and its snapshots. The snapshots are point-in-time from this call."""
    tags = [{"Key": k, "Value": v} for k, v in image_tags(engine, deployment).items()]
    pins = pinned_versions()
    version = pins["VLLM_VERSION"] if engine == "vllm" else pins["SGLANG_VERSION"]
    name = f"qwen3vl-{engine}-{version}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
    with aws_errors("Creating the baked image"):
        return ec2.create_image(
            InstanceId=instance_id,
            Name=name,
            Description=f"qwen3vl-aws baked {engine} {version} from {deployment}",
            NoReboot=True,
            TagSpecifications=[
                {"ResourceType": "image", "Tags": tags},
                {"ResourceType": "snapshot", "Tags": tags},
            ],
        )["ImageId"]


def wait_available(ec2: Any, image_id: str) -> None:
    with aws_errors(f"Waiting for the baked image {image_id}"):
        ec2.get_waiter("image_available").wait(
            ImageIds=[image_id], WaiterConfig={"Delay": 15, "MaxAttempts": 160}
        )


def create_image(ec2: Any, instance_id: str, engine: str, deployment: str) -> str:
    """start_image, then wait until the image is available; returns its id."""
    image_id = start_image(ec2, instance_id, engine, deployment)
    wait_available(ec2, image_id)
    return image_id


BOOTSTRAP = "/opt/qwen3vl/bin/qwen3vl-bootstrap"


def bake_instance(ec2: Any, channel: Any, instance_id: str, engine: str, deployment: str) -> str:
    """Seal the ready instance's secrets, start the image, unseal at once, wait for the image."""
    from .status import read_status

    status = read_status(channel)
    if status is None or not status.ready:
        raise UsageError(
            "Bake a ready instance: its bootstrap has not reached ready (`qwen3vl-aws wait`)."
        )
    channel.run(f"{BOOTSTRAP} seal").check("Sealing the instance's secrets before the image")
    try:
        image_id = start_image(ec2, instance_id, engine, deployment)
    finally:
        channel.run(f"{BOOTSTRAP} unseal").check("Unsealing the instance's secrets")
    wait_available(ec2, image_id)
    return image_id


def delete_image(ec2: Any, image_id: str) -> BakedImage:
    """Deregister a baked image and delete its snapshots (which otherwise keep costing)."""
    found = [b for b in list_baked(ec2) if b.image_id == image_id]
    if not found:
        raise UsageError(
            f"{image_id} is not a baked qwen3vl-aws image of this account and region: "
            "see `qwen3vl-aws bake --list`."
        )
    with aws_errors(f"Deleting the baked image {image_id}"):
        ec2.deregister_image(ImageId=image_id)
        for snapshot in found[0].snapshots:
            ec2.delete_snapshot(SnapshotId=snapshot)
    return found[0]
