"""Reading host key fingerprints from cloud-init's console blocks (no network, no sshd)."""

from __future__ import annotations

from qwen3vl_aws.instance.channel.ssh import console_fingerprints

# A key pair made once with ssh-keygen; fingerprints as `ssh-keygen -lf` printed them.
ED25519_PUB = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAID6p+3njwTC9YnbJBXz9HtC9lTZvq9Ur8kp5lQqjg2R/ "
    "root@ip-10-0-1-23"
)
ED25519_FP = "SHA256:LrW0TIa6T3m8IVQxGtQhnPIZm8e5C7ewwMuv9XYuS2s"
ECDSA_FP = "SHA256:vHNVb1tZsdbFJEUDRJU3IqK1o61MyUxMtuubsmCauu4"


def test_fingerprints_block_with_syslog_prefixes():
    console = f"""
[  OK  ] Started cloud-final.service
ec2: #############################################################
ec2: -----BEGIN SSH HOST KEY FINGERPRINTS-----
ec2: 256 {ECDSA_FP} root@ip-10-0-1-23 (ECDSA)
<14>Nov 24 21:00:01 cloud-init: 256 {ED25519_FP} root@ip-10-0-1-23 (ED25519)
ec2: -----END SSH HOST KEY FINGERPRINTS-----
"""
    assert console_fingerprints(console) == {ECDSA_FP, ED25519_FP}


def test_keys_block_lines_become_their_fingerprints():
    console = f"-----BEGIN SSH HOST KEY KEYS-----\n{ED25519_PUB}\n-----END SSH HOST KEY KEYS-----\n"
    assert console_fingerprints(console) == {ED25519_FP}


def test_text_outside_the_blocks_is_not_trusted():
    console = (
        f"login: someone typed {ED25519_FP}\n{ED25519_PUB}\n"
        "-----BEGIN SSH HOST KEY FINGERPRINTS-----\n-----END SSH HOST KEY FINGERPRINTS-----\n"
    )
    assert console_fingerprints(console) == set()
