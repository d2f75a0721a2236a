"""Every copy of the instance contract agrees with ``userdata/instance.json``.

The Python package, the userdata Terraform module and the rig read the manifest itself. What
cannot read it is held to it here: the deployment-name validation in both ``variables.tf`` (a
Terraform validation is a literal), and the bootstrap script's own paths and stage list.
"""

from __future__ import annotations

import re

import pytest
from qwen3vl_aws.contract import instance_contract
from qwen3vl_aws.deployment import validate_name
from qwen3vl_aws.errors import UsageError
from qwen3vl_aws.paths import terraform_dir, userdata_dir

CONTRACT = instance_contract()
NAME_VARIABLES = {
    terraform_dir() / "variables.tf": "name",
    terraform_dir() / "modules" / "userdata" / "variables.tf": "deployment_name",
}


def variable_block(text: str, name: str) -> str:
    match = re.search(rf'^variable "{name}" {{\n(.*?)^}}', text, re.MULTILINE | re.DOTALL)
    assert match, f"variable {name!r} not found"
    return match[1]


@pytest.mark.parametrize("path", list(NAME_VARIABLES), ids=lambda p: str(p.parent.name))
def test_terraform_validates_the_deployment_name_with_the_contracts_rule(path) -> None:
    block = variable_block(path.read_text(), NAME_VARIABLES[path])
    patterns = re.findall(r'regex\("((?:[^"\\]|\\.)*)", var\.\w+\)', block)
    assert patterns == [CONTRACT.name_pattern.pattern]
    assert CONTRACT.name_rule in block  # the error message states the same rule


@pytest.mark.parametrize("name", ["a", "1abc", "abc-", "Abc", "a" * 33, "ab_c"])
def test_python_refuses_what_the_rule_refuses(name: str) -> None:
    assert not CONTRACT.name_pattern.match(name)
    with pytest.raises(UsageError, match=re.escape(CONTRACT.name_rule)):
        validate_name(name)


def bootstrap_variables() -> dict[str, str]:
    """The bootstrap's top-level ``NAME="value"`` assignments, ``$VAR`` expanded, on an instance
    (``ROOT`` empty: ``QWEN3VL_ROOT`` is only set by the rig)."""
    values: dict[str, str] = {"ROOT": ""}
    text = (userdata_dir() / "bin" / "qwen3vl-bootstrap").read_text()
    for name, value in re.findall(r'^([A-Z_]+)="([^"]*)"$', text, re.MULTILINE):
        if name != "ROOT":
            values[name] = re.sub(r"\$(\w+)", lambda m: values.get(m[1], m[0]), value)
    return values


def test_the_bootstrap_writes_where_the_contract_says() -> None:
    bootstrap = bootstrap_variables()
    assert tuple(bootstrap["STAGES"].split()) == CONTRACT.stages
    assert bootstrap["STATUS"] == CONTRACT.paths["status_file"]
    text = (userdata_dir() / "bin" / "qwen3vl-bootstrap").read_text()
    log_dir, log_name = CONTRACT.paths["bootstrap_log"].rsplit("/", 1)
    assert bootstrap["LOGS"] == log_dir and f'"$LOGS/{log_name}"' in text
    cert_dir, cert_name = CONTRACT.paths["cert_file"].rsplit("/", 1)
    assert f'dir="$ETC/{cert_dir.removeprefix(bootstrap["ETC"] + "/")}"' in text
    assert f"$dir/{cert_name}" in text


def test_every_installed_file_exists_and_every_instance_file_is_installed() -> None:
    installed = {**CONTRACT.files, **CONTRACT.fleet_files}
    sources = {spec.source for spec in installed.values()}
    shipped = {
        str(p.relative_to(userdata_dir()))
        for top in ("bin", "share", "lib", "locks")
        for p in (userdata_dir() / top).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert shipped | {"versions.env"} == sources
    for path, spec in installed.items():
        assert (userdata_dir() / spec.source).is_file(), path
        assert spec.mode == ("0755" if spec.source.startswith("bin/") else "0644"), path
    assert CONTRACT.paths["keysync"] in CONTRACT.files
    for unit in CONTRACT.units.values():
        assert f"/opt/qwen3vl/share/{unit}" in CONTRACT.files
