"""One recorded deployment and what reaches it: boto3 clients in its region, its command channel.

Every command that works on an existing deployment gets a :class:`DeploymentSession` from
``App.deployment()``. The clients come from one :class:`~qwen3vl_aws.aws.clients.ClientFactory`
made for the region the deployment was created in (never the shell's), the channel is opened once
and shared, and the rotation and price are wired from those same parts. Tests replace the client
factory or a subclass of this class on the ``App``; nothing else builds clients or channels.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING

from .deployment import Deployment

if TYPE_CHECKING:
    import httpx

    from .aws.clients import ClientFactory
    from .aws.pricing import Price
    from .instance.channel.base import CommandChannel
    from .keys.rotation import InstanceSync, KeyCheck, Rotation
    from .keys.secret import SecretStore

#: Builds the client factory for a region and profile (``ClientFactory`` itself by default).
ClientMaker = Callable[[str | None, str | None], "ClientFactory"]


def make_clients(region: str | None, profile: str | None) -> ClientFactory:
    """The default :data:`ClientMaker`."""
    from .aws.clients import ClientFactory

    return ClientFactory(region=region, profile=profile)


class DeploymentSession:
    """The deployment record, AWS clients in its region, and (on first use) its command channel."""

    def __init__(
        self, record: Deployment, clients: ClientFactory, *, accept_host_key: str | None = None
    ) -> None:
        self.record = record
        self.clients = clients
        self.accept_host_key = accept_host_key  # SSH only: a fingerprint the user vouches for

    @cached_property
    def channel(self) -> CommandChannel:
        """The transport the deployment was made for (SSM or SSH, or one a rig registered)."""
        from .instance.channel.factory import channel_for

        return channel_for(self.record, self.clients, accept_host_key=self.accept_host_key)

    def replica_channel(self, instance_id: str) -> CommandChannel:
        """The command channel to one replica of a fleet (the deployment's transport, opened
        for that instance id)."""
        from dataclasses import replace

        from .instance.channel.factory import channel_for

        replica = replace(self.record, instance_id=instance_id, public_ip=None)
        return channel_for(replica, self.clients, accept_host_key=self.accept_host_key)

    def secret(self) -> SecretStore:
        """The deployment's API-key secret in Secrets Manager."""
        from .keys.secret import secret_store

        return secret_store(self.record, self.clients)

    def endpoint(self, api_key: str | None = None) -> httpx.Client:
        """An HTTPS client for the public endpoint trusting only the pinned certificate."""
        from .instance.endpoint import pinned_client

        return pinned_client(self.record, api_key)

    def key_sync(self, report: Callable[[str], None] = lambda _msg: None) -> InstanceSync:
        """Brings the instance's key file in line with secret versions (over the channel); for
        a fleet, every InService replica's, with one SSM command by instance ids (``report``
        hears each replica's outcome)."""
        if self.record.is_fleet:
            from .fleet.keysync import FleetKeySync, in_service_instances
            from .instance.channel.ssm import SsmCommands

            group = self.record.fleet["autoscaling_group_name"]
            autoscaling = self.clients.client("autoscaling")
            return FleetKeySync(
                SsmCommands(self.clients.client("ssm")),
                lambda: in_service_instances(autoscaling, group),
                report,
            )
        from .instance.keysync import ChannelKeySync

        return ChannelKeySync(self.channel)

    def key_check(self) -> KeyCheck:
        """Asks the endpoint, through the pinned client, whether it accepts a key (for a fleet,
        the load balancer's HTTPS listener: ``record.endpoint`` is its URL)."""
        from .instance.endpoint import EndpointKeyCheck, require_pinned

        require_pinned(self.record)
        return EndpointKeyCheck(self.endpoint())

    def rotation(self, *, report: Callable[[str], None]) -> Rotation:
        """The key rotation of this deployment: its secret, its instance(s), its endpoint."""
        from .keys.rotation import Rotation

        return Rotation(self.secret(), self.key_sync(report), self.key_check(), report=report)

    def price(self) -> Price:
        """The instance type's hourly price in the deployment's region."""
        from .aws.pricing import hourly_price

        return hourly_price(self.record.instance_type, self.record.region, self.clients)
