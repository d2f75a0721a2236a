"""Close one gap between moto and EC2 that would otherwise look like drift in our module.

moto 5.x drops ``Iops`` and ``Throughput`` from RunInstances' block device mappings, so a gp3 root
volume comes back with throughput 0 and every later plan wants to "fix" it. Real EC2 honours both.
The in-process moto server is patched to keep them, so "a second plan shows no changes" tests our
module rather than the emulator's gap.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

GP3_FIELDS = ("Iops", "Throughput")


@contextmanager
def keep_gp3_performance() -> Iterator[None]:
    """Patch moto's RunInstances so root/extra volumes keep their requested IOPS and throughput."""
    from moto.ec2.models import EC2Backend
    from moto.ec2.responses.instances import InstanceResponse

    original_parse = InstanceResponse._parse_block_device_mapping
    original_run = EC2Backend.run_instances

    def parse(self: InstanceResponse) -> list[dict[str, Any]]:
        mappings = original_parse(self)
        for mapping, raw in zip(mappings, self._get_param("BlockDeviceMappings", []), strict=True):
            for name in GP3_FIELDS:
                mapping["Ebs"][name] = raw.get("Ebs", {}).get(name)
        return mappings

    def run(self: EC2Backend, *args: Any, **kwargs: Any) -> Any:
        reservation = original_run(self, *args, **kwargs)
        for instance in reservation.instances:
            for mapping in kwargs.get("block_device_mappings") or []:
                device = instance.block_device_mapping.get(mapping["DeviceName"])
                if device is None:
                    continue
                volume = self.get_volume(device.volume_id)
                volume.iops = mapping["Ebs"].get("Iops") or volume.iops
                volume.throughput = mapping["Ebs"].get("Throughput") or volume.throughput
        return reservation

    InstanceResponse._parse_block_device_mapping = parse
    EC2Backend.run_instances = run
    try:
        yield
    finally:
        InstanceResponse._parse_block_device_mapping = original_parse
        EC2Backend.run_instances = original_run
