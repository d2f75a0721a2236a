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


@contextmanager
def keep_fleet_settings() -> Iterator[None]:
    """Patch moto where it loses or invents fleet settings that AWS keeps as sent:

    - lifecycle hooks come back with a made-up role and SQS target (a "TODO" in moto);
    - scaling policies come back without ``Enabled`` (AWS: true) and with an empty predictive
      configuration on every policy type;
    - a security group rule that references another group loses its description;
    - a launch template's own tags (CreateLaunchTemplate's TagSpecifications) are copied into
      its launch data, as if they were to be put on the instances it launches.
    Without these, every plan after an apply would "fix" them.
    """
    from moto.autoscaling.models import FakeScalingPolicy, LifecycleHook
    from moto.ec2.models import EC2Backend
    from moto.ec2.models.security_groups import SecurityGroupRule

    hook_init, policy_init = LifecycleHook.__init__, FakeScalingPolicy.__init__
    rule_description = SecurityGroupRule.description
    create_template = EC2Backend.create_launch_template

    def hook(self: LifecycleHook, *args: Any, **kwargs: Any) -> None:
        hook_init(self, *args, **kwargs)
        self.role_arn = None
        self.notification_target_arn = None

    def policy(self: FakeScalingPolicy, *args: Any, **kwargs: Any) -> None:
        policy_init(self, *args, **kwargs)
        self.enabled = True
        self.predictive_scaling_configuration = self.predictive_scaling_configuration or None

    def description(self: SecurityGroupRule) -> str | None:
        return self.ip_range.get("Description") or (self.source_group or {}).get("Description")

    def template(self: EC2Backend, name: str, description: str, data: dict, *rest: Any) -> Any:
        specs = data.get("TagSpecifications") or []
        data["TagSpecifications"] = [s for s in specs if s["ResourceType"] != "launch-template"]
        return create_template(self, name, description, data, *rest)

    LifecycleHook.__init__ = hook
    EC2Backend.create_launch_template = template
    FakeScalingPolicy.__init__ = policy
    SecurityGroupRule.description = property(description)
    try:
        yield
    finally:
        LifecycleHook.__init__ = hook_init
        FakeScalingPolicy.__init__ = policy_init
        SecurityGroupRule.description = rule_description
        EC2Backend.create_launch_template = create_template
