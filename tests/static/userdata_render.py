"""Render the userdata module with real Terraform, through a tiny root config that calls it."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from qwen3vl_aws.aws.terraform import find_executable, stage_module

CALLER = """
variable "inputs" {
  type = any
}

module "userdata" {
  source = "../terraform/modules/userdata"

  deployment_name       = var.inputs.deployment_name
  region                = var.inputs.region
  secret_arn            = var.inputs.secret_arn
  engine                = var.inputs.engine
  model_id              = var.inputs.model_id
  draft_model_id        = var.inputs.draft_model_id
  draft_model_revision  = try(var.inputs.draft_model_revision, "")
  served_model_name     = var.inputs.served_model_name
  engine_args           = var.inputs.engine_args
  public_host           = var.inputs.public_host
  domain                = var.inputs.domain
  port                  = var.inputs.port
  allowed_media_domains = var.inputs.allowed_media_domains
  model_cache           = var.inputs.model_cache
  max_image_pixels      = var.inputs.max_image_pixels
  fleet                 = try(var.inputs.fleet, null)
  bundle_bucket         = var.inputs.bundle_bucket
  bundle_key            = var.inputs.bundle_key
  bundle_sha256         = var.inputs.bundle_sha256
}

output "rendered" {
  value = module.userdata.rendered
}

output "base64gzip" {
  value = module.userdata.base64gzip
}

output "bundle" {
  value = module.userdata.bundle
}

output "bundle_sha256" {
  value = module.userdata.bundle_sha256
}
"""

DEFAULT_INPUTS: dict[str, object] = {
    "model_cache": "ebs",
    "deployment_name": "qwen3vl",
    "region": "us-east-1",
    "secret_arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:qwen3vl/api-key-AbCdEf",
    "engine": "vllm",
    "model_id": "Qwen/Qwen3-VL-8B-Instruct",
    "draft_model_id": "",
    "served_model_name": "Qwen/Qwen3-VL-8B-Instruct",
    "engine_args": [],
    "public_host": "203.0.113.10",
    "domain": "",
    "port": 443,
    "allowed_media_domains": [],
    "max_image_pixels": 16777216,
    "bundle_bucket": "qwen3vl-qwen3vl-20261201000000000000000001",
    "bundle_key": "bundle/" + "ab" * 32 + ".json",
    "bundle_sha256": "ab" * 32,
}


@dataclass(frozen=True)
class Rendered:
    text: str
    base64gzip: str
    bundle: str  # JSON {path: {mode, content}}
    bundle_sha256: str


class RenderFailed(AssertionError):
    """Terraform refused the inputs; carries its output."""


def _run(args: list[str], cwd: Path, work: Path) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(work),
        "TF_IN_AUTOMATION": "1",
        "TF_CLI_CONFIG_FILE": str(work / "terraformrc"),
        "TF_DATA_DIR": str(work / "tf-data"),
        "CHECKPOINT_DISABLE": "1",
    }
    return subprocess.run(
        [find_executable(), *args, "-no-color"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def stage(work: Path) -> Path:
    """Copy the module tree into ``work`` and initialise the caller config; return its dir."""
    stage_module(work / "tree")
    caller = work / "tree" / "render"
    caller.mkdir()
    (caller / "main.tf").write_text(CALLER)
    (work / "terraformrc").write_text("")
    result = _run(["init", "-input=false", "-backend=false"], caller, work)
    if result.returncode != 0:
        raise AssertionError(f"terraform init failed:\n{result.stdout}\n{result.stderr}")
    return caller


def render(caller: Path, work: Path, **overrides: object) -> Rendered:
    """Apply the caller config with DEFAULT_INPUTS updated by ``overrides``."""
    inputs = {**DEFAULT_INPUTS, **overrides}
    (caller / "inputs.auto.tfvars.json").write_text(json.dumps({"inputs": inputs}))
    state = f"-state={work / 'render.tfstate'}"
    result = _run(["apply", "-auto-approve", "-input=false", state], caller, work)
    if result.returncode != 0:
        raise RenderFailed(result.stdout + result.stderr)
    out = _run(["output", "-json", state], caller, work)
    outputs = json.loads(out.stdout)
    return Rendered(
        *(outputs[name]["value"] for name in ("rendered", "base64gzip", "bundle", "bundle_sha256"))
    )
