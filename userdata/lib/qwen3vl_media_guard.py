"""qwen3vl media guard: image URLs sent to the engine reach public internet addresses only.

A vLLM general plugin (the entry point in qwen3vl_media_guard-1.0.dist-info, found on the
engine unit's PYTHONPATH) that registers the media connector ``qwen3vl-public``; engine.env
selects it with VLLM_MEDIA_CONNECTOR, so without this plugin vLLM refuses every media URL
rather than fetching it unguarded.

Why in the engine: the unit's IPAddressDeny drops private and link-local packets in the kernel,
but it must allow loopback (the gateway reaches the engine there), and a URL such as
http://127.0.0.1:22/ would otherwise reach anything on the host. Every address a URL's host
resolves to must be global unicast; the check runs before any connection, with one answer for
every refused URL (nothing tells an open port from a closed one), and again at connect time for
names (so a DNS answer that changes in between is caught). Redirects are never followed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

NAME = "qwen3vl-public"
REFUSED = (
    "Image URLs must point to a public internet address: this one is on the server itself, "
    "in a private, link-local or reserved range, or does not resolve. Send the image as a "
    "base64 data: URL instead."
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def is_public(address: str) -> bool:
    """True for a global unicast address (IPv4 inside IPv6 is judged as the IPv4 address)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped or ip.sixtofour:
            ip = ip.ipv4_mapped or ip.sixtofour
        elif ip in _NAT64:
            ip = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.is_global and not ip.is_multicast


def _host(url: str) -> str:
    host = urlsplit(url).hostname
    if not host:
        raise ValueError(REFUSED)
    return host


def _all_public(infos: list[tuple]) -> bool:
    return bool(infos) and all(is_public(info[4][0]) for info in infos)


def check_url(url: str) -> None:
    """Raise ValueError(REFUSED) unless every address of the URL's host is public."""
    try:
        infos = socket.getaddrinfo(_host(url), None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError) as exc:
        raise ValueError(REFUSED) from exc
    if not _all_public(infos):
        raise ValueError(REFUSED)


async def check_url_async(url: str) -> None:
    """:func:`check_url` without blocking the event loop on DNS."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(_host(url), None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError) as exc:
        raise ValueError(REFUSED) from exc
    if not _all_public(infos):
        raise ValueError(REFUSED)


def register() -> None:
    """vLLM plugin entry point: register the ``qwen3vl-public`` media connector (idempotent)."""
    import aiohttp
    from vllm.connections import HTTPConnection
    from vllm.exceptions import VLLMValidationError
    from vllm.multimodal.media import MEDIA_CONNECTOR_REGISTRY, MediaConnector

    if NAME in MEDIA_CONNECTOR_REGISTRY.name2class:
        return

    def refused(exc: ValueError) -> VLLMValidationError:
        return VLLMValidationError(str(exc), parameter="image_url")

    class PublicResolver(aiohttp.ThreadedResolver):
        """Names are checked again at connect time: the address connected to is public."""

        async def resolve(self, host, port=0, family=socket.AF_INET):
            results = await super().resolve(host, port, family)
            if not results or not all(is_public(r["host"]) for r in results):
                raise OSError(REFUSED)
            return results

    class PublicHTTPConnection(HTTPConnection):
        def get_response(self, url, **kwargs):
            try:
                check_url(url)
            except ValueError as exc:
                raise refused(exc) from None
            return super().get_response(url, **{**kwargs, "allow_redirects": False})

        async def get_async_response(self, url, **kwargs):
            try:
                await check_url_async(url)
            except ValueError as exc:
                raise refused(exc) from None
            return await super().get_async_response(url, **{**kwargs, "allow_redirects": False})

        async def get_async_client(self):
            if self._async_client is None or not self.reuse_client:
                connector = aiohttp.TCPConnector(resolver=PublicResolver())
                self._async_client = aiohttp.ClientSession(connector=connector, trust_env=True)
            return self._async_client

    connection = PublicHTTPConnection()

    @MEDIA_CONNECTOR_REGISTRY.register(NAME)
    class PublicMediaConnector(MediaConnector):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **{**kwargs, "connection": connection})
