"""`apply`'s argument handling: everything here fails (or asks) before any AWS call."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from qwen3vl_aws.aws import preflight
from qwen3vl_aws.cli import cli


@pytest.fixture
def no_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_REGION", "us-east-1")


def _apply(*args: str, stdin: str = ""):
    return CliRunner().invoke(cli, ["apply", *args], input=stdin)


def test_key_value_on_argv_is_refused_and_not_echoed(no_credentials: None) -> None:
    key = "sk-qwen-" + "q" * 40
    result = _apply("--yes", "--allow", "203.0.113.7/32", "--key", key)
    assert result.exit_code == 2
    assert "--key takes only '-'" in result.output
    assert key not in result.output


def test_key_from_stdin_needs_yes(no_credentials: None) -> None:
    result = _apply("--allow", "203.0.113.7/32", "--key", "-", stdin="sk-qwen-" + "q" * 40)
    assert result.exit_code == 2
    assert "add --yes" in result.output


@pytest.mark.parametrize("args", [("--ssh-key-name", "me"), ("--ssh-allow", "198.51.100.0/24")])
def test_ssh_key_pair_and_ssh_cidrs_go_together(no_credentials: None, args: tuple) -> None:
    result = _apply("--yes", "--allow", "203.0.113.7/32", *args)
    assert result.exit_code == 2
    assert "--ssh-key-name and --ssh-allow go together" in result.output


def test_open_ingress_warns_then_needs_credentials(no_credentials: None) -> None:
    result = _apply("--yes", "--allow", "0.0.0.0/0", "--allow-anywhere")
    assert "lets anyone on the internet reach the endpoint" in result.output
    assert result.exit_code == 3
    assert "No AWS credentials found" in result.output


def test_detected_ip_is_offered_and_can_be_declined(
    no_credentials: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(preflight, "detect_public_ip", lambda: "198.51.100.23")
    declined = _apply(stdin="n\n")
    assert "your public IP is 198.51.100.23/32" in declined.output
    assert declined.exit_code == 2
    assert "Pass --allow CIDR" in declined.output
    accepted = _apply(stdin="y\n")
    assert accepted.exit_code == 3  # went on to the credentials check


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--allow-media-domain", "https://upload.wikimedia.org/"), "is not a domain name"),
        (("--allow-media-domain", "*.example.com"), "no scheme, port, path or wildcard"),
        (("--subnet-id", "vpc-0123456789abcdef0"), "looks like subnet-0123456789abcdef0"),
        (("--engine", "tgi"), "'tgi' is not one of 'vllm', 'sglang'"),
        (("--model-cache", "tmpfs"), "'tmpfs' is not one of 'ebs', 'instance-store'"),
        (("--model-revision", "main"), "is not a 40-character commit hash"),
        (("--s3-cache",), "--s3-cache needs --model-revision"),
        (("--speculative", "eagle3", "--draft-revision", "main"), "is not a 40-character commit"),
        (("--draft-revision", "a" * 40), "--draft-revision pins a speculative draft"),
    ],
)
def test_bad_option_values_fail_before_any_aws_call(
    no_credentials: None, args: tuple, message: str
) -> None:
    result = _apply("--yes", "--allow", "203.0.113.7/32", *args)
    assert result.exit_code == 2, result.output  # 3 would mean it got as far as credentials
    assert message in result.output


def test_good_option_values_pass_the_checks(no_credentials: None) -> None:
    result = _apply(
        "--yes", "--allow", "203.0.113.7/32", "--engine", "sglang", "--model-cache",
        "instance-store", "--allow-media-domain", "Upload.Wikimedia.org.",
        "--subnet-id", "subnet-0123456789abcdef0", "--s3-cache", "--model-revision", "a" * 40,
    )  # fmt: skip
    assert result.exit_code == 3  # went on to the credentials check
    assert "No AWS credentials found" in result.output


def test_an_eagle3_draft_pinned_nowhere_is_refused_before_any_aws_call(
    no_credentials: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --draft-revision and without a pin in versions.env, nothing downloads the draft's
    main branch: apply stops and says how to pin it."""
    from qwen3vl_aws.serving import versions

    monkeypatch.setattr(versions, "pinned_revision", lambda model_id, path=None: None)
    result = _apply("--yes", "--allow", "203.0.113.7/32", "--speculative", "eagle3")
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.split())
    assert "needs the draft taobao-mnn/Qwen3-VL-8B-Instruct-Eagle3 pinned to a revision" in message
    assert "MODEL_REVISION_QWEN3_VL_8B_INSTRUCT_EAGLE3" in message
    assert "--draft-revision COMMIT" in message


def test_an_eagle3_draft_with_its_revision_passes_the_checks(no_credentials: None) -> None:
    result = _apply(
        "--yes", "--allow", "203.0.113.7/32", "--speculative", "eagle3", "--engine", "sglang",
        "--draft-revision", "c" * 40,
    )  # fmt: skip
    assert result.exit_code == 3, result.output  # went on to the credentials check


def test_cache_inputs_name_the_accounts_bucket_and_pin_the_revision() -> None:
    from qwen3vl_aws.aws.model_cache import terraform_variables

    revision = "b" * 40
    assert terraform_variables("123456789012", "eu-west-1", revision, True) == {
        "model_revision": revision,
        "model_cache_bucket": "qwen3vl-models-123456789012-eu-west-1",
    }
    assert terraform_variables("123456789012", "eu-west-1", revision, False) == {
        "model_revision": revision
    }
    assert terraform_variables("123456789012", "eu-west-1", None, False) == {}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--replicas", "4:2"), "MIN (4) must not exceed MAX (2)"),
        (("--replicas", "2:4", "--idle-minutes", "15"), "needs MIN 0"),
        (("--replicas", "2:4", "--on-demand-base", "1"), "only apply with --spot"),
        (("--spot",), "only apply to a fleet: add --replicas"),
        (("--replicas", "2:4", "--domain", "vl.example.com"), "pass --route53-zone-id"),
        (("--replicas", "2:4", "--subnet-id", "subnet-0123456789abcdef0"), "--subnet-id is for"),
    ],
)
def test_bad_fleet_options_fail_before_any_aws_call(
    no_credentials: None, args: tuple, message: str
) -> None:
    result = _apply("--yes", "--allow", "203.0.113.7/32", *args)
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_a_recorded_fleet_is_not_reapplied_as_one_instance(
    no_credentials: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from qwen3vl_aws.deployment import Deployment

    monkeypatch.setenv("QWEN3VL_AWS_HOME", str(tmp_path / "home"))
    Deployment(
        name="qwen3vl", region="us-east-1", instance_type="g5.xlarge",
        fleet={"min_size": 2, "max_size": 4},
    ).save()  # fmt: skip
    result = _apply("--yes", "--allow", "203.0.113.7/32")
    assert result.exit_code == 2
    assert "is a fleet: pass --replicas (its bounds are 2:4)" in result.output
