"""Close one gap between moto and EC2: CreateImage's TagSpecifications for snapshots.

EC2 tags the new image's snapshots from a ``snapshot`` TagSpecification; moto 5.2 raises
NotImplementedError for it. While this patch is active, moto creates the image with the image
tags and then tags its snapshot with the snapshot tags, as EC2 does.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def snapshot_tags_on_create_image() -> Iterator[None]:
    from moto.ec2.models.amis import AmiBackend

    original = AmiBackend.create_image

    def create_image(
        self: Any,
        instance_id: str,
        name: str,
        description: str,
        tag_specifications: list[dict[str, Any]],
    ) -> Any:
        snapshot = [s for s in tag_specifications if s["ResourceType"] == "snapshot"]
        rest = [s for s in tag_specifications if s["ResourceType"] != "snapshot"]
        ami = original(self, instance_id, name, description, rest)
        for spec in snapshot:
            self.create_tags([ami.ebs_snapshot.id], {t["Key"]: t["Value"] for t in spec["Tags"]})
        return ami

    AmiBackend.create_image = create_image
    try:
        yield
    finally:
        AmiBackend.create_image = original
