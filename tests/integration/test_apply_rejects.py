"""Bad input to `apply`: a clear message, the right exit code, and nothing created anywhere.

These fail in the CLI's preflight (before Terraform), so they run quickly against the emulator.
"""

from __future__ import annotations

import pytest
from aws_emulator import MOTO_DLAMI, Emulator, nothing_created

pytestmark = pytest.mark.slow  # each case runs the CLI in a subprocess against moto (1-3 s)

APPLY = ("apply", "--yes", "--no-wait", "--ami-id", MOTO_DLAMI)


def _rejected(emulator: Emulator, *args: str, code: int, region: str = "us-east-1", **kw):
    result = emulator.run(*args, **kw)
    assert result.returncode == code, result.stdout + result.stderr
    assert nothing_created(emulator, region)
    assert not any(emulator.home.glob("*/deployment.json"))
    assert "Traceback" not in result.stderr
    return result.stderr


def test_unsupported_instance_type_lists_the_allowed_ones(emulator: Emulator) -> None:
    err = _rejected(
        emulator, *APPLY, "--instance-type", "p4d.24xlarge", "--allow", "203.0.113.7/32", code=2
    )
    assert "Unsupported instance type 'p4d.24xlarge'" in err
    assert "g5.xlarge" in err and "g6.xlarge" in err and "g6e.xlarge" in err


@pytest.mark.parametrize(
    ("cidr", "hint"),
    [
        ("203.0.113.300/32", "is not a valid CIDR"),
        ("10.0.0.1/24", "Did you mean 10.0.0.0/24?"),
        ("not-a-network", "is not a valid CIDR"),
    ],
)
def test_malformed_cidr(emulator: Emulator, cidr: str, hint: str) -> None:
    err = _rejected(emulator, *APPLY, "--allow", cidr, code=2)
    assert hint in err


def test_whole_internet_needs_the_explicit_flag(emulator: Emulator) -> None:
    err = _rejected(emulator, *APPLY, "--allow", "0.0.0.0/0", code=2)
    assert "--allow-anywhere" in err


def test_region_that_does_not_offer_the_type(emulator: Emulator) -> None:
    # moto's offering data (taken from AWS) has no g6e in ca-central-1, but g5 and g6.
    err = _rejected(
        emulator,
        "--region",
        "ca-central-1",
        *APPLY,
        "--instance-type",
        "g6e.xlarge",
        "--allow",
        "203.0.113.7/32",
        code=2,
        region="ca-central-1",
    )
    assert "g6e.xlarge is not offered in ca-central-1" in err
    assert "g5.xlarge" in err and "g6.xlarge" in err


def test_missing_credentials(emulator: Emulator) -> None:
    env = {
        k: v
        for k, v in emulator.env.items()
        if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    }
    err = _rejected(emulator, *APPLY, "--allow", "203.0.113.7/32", code=3, env=env)
    assert "No AWS credentials found" in err


def test_key_on_the_command_line_is_refused_without_echoing_it(emulator: Emulator) -> None:
    key = "sk-qwen-" + "z" * 40
    err = _rejected(emulator, *APPLY, "--allow", "203.0.113.7/32", "--key", key, code=2)
    assert "--key takes only '-'" in err
    assert key not in err


def test_key_from_stdin_must_be_well_formed(emulator: Emulator) -> None:
    err = _rejected(
        emulator, *APPLY, "--allow", "203.0.113.7/32", "--key", "-", stdin="short\n", code=2
    )
    assert "The key is malformed" in err
    assert "short" not in err
