"""The engine's media guard (userdata/lib/qwen3vl_media_guard.py): which addresses an image URL
may reach. Its vLLM side runs in tests/node/test_engine_abuse.py against the real server."""

from __future__ import annotations

import asyncio
import importlib.util

import pytest
from qwen3vl_aws.paths import userdata_dir

spec = importlib.util.spec_from_file_location(
    "qwen3vl_media_guard", userdata_dir() / "lib" / "qwen3vl_media_guard.py"
)
guard = importlib.util.module_from_spec(spec)
spec.loader.exec_module(guard)

REFUSED = [
    "127.0.0.1", "127.3.2.1", "0.0.0.0", "10.1.2.3", "172.16.0.1", "192.168.1.1",
    "169.254.169.254", "100.64.0.1", "224.0.0.1", "255.255.255.255", "::1", "::",
    "fe80::1", "fd00:ec2::254", "::ffff:127.0.0.1", "::ffff:169.254.169.254",
    "64:ff9b::a9fe:a9fe", "2002:7f00:1::1", "ff02::1",
]  # fmt: skip
PUBLIC = ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"]


@pytest.mark.parametrize("address", REFUSED)
def test_host_private_link_local_and_reserved_addresses_are_not_public(address: str):
    assert not guard.is_public(address)


@pytest.mark.parametrize("address", PUBLIC)
def test_global_unicast_addresses_are_public(address: str):
    assert guard.is_public(address)


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:22/", "http://localhost:8000/x.png", "http://[::1]/", "http://10.0.0.2/",
     "http://no-such-host.invalid/x.png", "http:///x.png"],
)  # fmt: skip
def test_urls_on_the_host_or_unresolvable_get_one_answer(url: str):
    with pytest.raises(ValueError) as sync_error:
        guard.check_url(url)
    with pytest.raises(ValueError) as async_error:
        asyncio.run(guard.check_url_async(url))
    # The same words whatever the port or the reason: nothing to scan with.
    assert str(sync_error.value) == str(async_error.value) == guard.REFUSED


def test_a_public_address_passes():
    guard.check_url("http://8.8.8.8/x.png")
    asyncio.run(guard.check_url_async("https://[2606:4700:4700::1111]/x.png"))
