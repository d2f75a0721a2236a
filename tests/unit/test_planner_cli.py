"""``qwen3vl-aws plan-serving`` and the shared serving options (exact output and exit codes)."""

from __future__ import annotations

import json
import shlex

import click
import pytest
from click.testing import CliRunner
from qwen3vl_aws.cli import cli
from qwen3vl_aws.cli.serving_opts import serving_options
from qwen3vl_aws.errors import UsageError
from qwen3vl_aws.serving.engine_flags import sglang_flags, translation_note
from qwen3vl_aws.serving.model_profile import BF16_MODEL_ID, FP8_MODEL_ID
from qwen3vl_aws.serving.overrides import ServingOverrides
from qwen3vl_aws.serving.planner import plan_modes, plan_serving
from qwen3vl_aws.serving.versions import pinned_versions


def run(*args: str):
    return CliRunner().invoke(cli, ["plan-serving", *args], catch_exceptions=False)


def test_json_is_the_plan():
    result = run("--instance-type", "g6.12xlarge", "--offline", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    plan = plan_serving("g6.12xlarge")
    modes = [mode.to_json() for mode in plan_modes("g6.12xlarge")]
    expected = {**plan.to_json(), "engine": "vllm", "engine_args": plan.flags, "modes": modes}
    assert doc == json.loads(json.dumps(expected))
    assert doc["vllm_version"] == pinned_versions()["VLLM_VERSION"]
    assert [m["mode"] for m in doc["modes"]] == ["bf16", "fp8", "fp8 + fp8 kv"]


def test_table_shows_the_modes_side_by_side_and_the_vllm_version():
    result = run("-t", "g5.xlarge", "--offline")
    assert result.exit_code == 0, result.output
    table = result.output.split("Modes on g5.xlarge", 1)[1].split("How it is worked out", 1)[0]
    for mode in plan_modes("g5.xlarge"):
        assert mode.mode in table and f"{mode.plan.max_model_len:,}" in table
    assert f"{pinned_versions()['VLLM_VERSION']} (pinned" in result.output


def test_table_shows_the_arithmetic_and_the_flags():
    result = run("-t", "g5.xlarge", "--offline")
    assert result.exit_code == 0, result.output
    plan = plan_serving("g5.xlarge")
    assert f"Serving plan for g5.xlarge ({plan.gpu.count} x {plan.gpu.name})" in result.output
    for line in plan.explanation:
        assert line in result.output.replace("\n     ", " ")
    flags_line = result.output.split("vLLM flags:\n", 1)[1].strip()
    assert shlex.split(flags_line) == plan.flags
    assert "SGLang" not in result.output


def test_sglang_table_shows_the_translated_flags_and_why():
    result = run("-t", "g6.12xlarge", "--offline", "--engine", "sglang")
    assert result.exit_code == 0, result.output
    plan = plan_serving("g6.12xlarge")
    flags_line = result.output.split("SGLang flags:\n", 1)[1].strip()
    assert shlex.split(flags_line) == sglang_flags(plan)
    assert "vLLM flags:" not in result.output
    note = translation_note(plan, "sglang")
    assert note and note in result.output.replace("\n      ", " ")


def test_unknown_engine_is_refused():
    result = run("--offline", "--engine", "tgi")
    assert result.exit_code == 2
    assert "'tgi' is not one of 'vllm', 'sglang'" in result.output


def test_overrides_are_passed_through():
    result = run(
        "-t", "g6.xlarge", "--offline", "--json", "--max-model-len", "30000", "--max-num-seqs", "32"
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert (doc["model_id"], doc["max_model_len"], doc["max_num_seqs"]) == (
        FP8_MODEL_ID,
        30000,
        32,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-t", "g6.xlarge", "--max-model-len", "250000"], "does not fit on g6.xlarge"),
        (["-t", "g5.xlarge", "--model", BF16_MODEL_ID, "--video"], "drop --video"),
        (["-t", "p4d.24xlarge"], "Unsupported instance type 'p4d.24xlarge'"),
    ],
)
def test_what_cannot_fit_is_a_usage_error(args, message):
    result = run(*args, "--offline")
    assert result.exit_code == UsageError.exit_code
    assert result.output.startswith("Error: ")
    assert message in result.output


def test_click_validates_ranges():
    result = run("--gpu-memory-utilization", "1.5", "--offline")
    assert result.exit_code == 2
    assert "--gpu-memory-utilization" in result.output


def test_ec2_is_asked_when_aws_answers(aws_env):
    result = run("-t", "g6e.xlarge", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["gpu"]["source"] == "EC2 DescribeInstanceTypes"


def test_offline_never_asks_ec2(aws_env):
    result = run("-t", "g6e.xlarge", "--json", "--offline")
    assert json.loads(result.output)["gpu"]["source"] == "built-in catalog"


def test_serving_options_decorate_any_command_and_arrive_as_one_typed_value():
    seen = {}

    @click.command()
    @click.option("--instance-type", default="g6e.2xlarge")
    @click.option("--unrelated", default="x")
    @serving_options
    def apply_like(instance_type: str, serving: ServingOverrides, **opts: object) -> None:
        seen["opts"], seen["serving"] = opts, serving
        seen["plan"] = serving.plan_for(instance_type)

    result = CliRunner().invoke(
        apply_like, ["--max-model-len", "16384", "--video"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert seen["opts"] == {"unrelated": "x"}  # every serving option went into `serving`
    assert seen["serving"] == ServingOverrides(max_model_len=16384, video=True)
    plan = seen["plan"]
    assert plan.max_model_len == 16384 and plan.video
    assert plan == plan_serving("g6e.2xlarge", max_model_len=16384, video=True)


def test_overrides_that_cannot_fit_are_refused():
    with pytest.raises(UsageError, match="--max-model-len 99999 does not fit"):
        ServingOverrides(max_model_len=99999).plan_for("g5.xlarge")
