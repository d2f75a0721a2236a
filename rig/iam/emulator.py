"""Start the enforcing, recording moto (``rig.iam.server``) and hand out credentials in it.

Three kinds of caller: the tests' own ``admin`` (an IAM user allowed everything, to set up and
inspect), an IAM user holding a given policy (the operator), and a role assumed with STS (the
instance: EC2 assumes the instance role for the instance; here the rig does, with enforcement
paused for that one call, since the role trusts only ec2.amazonaws.com).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from rig.iam.policy import widened
from rig.net import free_port

REGION = "us-east-1"
REPO = Path(__file__).resolve().parents[2]
ALLOW_ALL = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None

    def env(self) -> dict[str, str]:
        """AWS_* variables for an SDK, the aws CLI or Terraform's provider."""
        env = {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
        }
        if self.session_token:
            env["AWS_SESSION_TOKEN"] = self.session_token
        return env

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Credentials:
        """The credentials in AWS_* variables (what :meth:`env` writes)."""
        return cls(
            env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], env.get("AWS_SESSION_TOKEN")
        )


class EnforcingEmulator:
    """A running enforcing moto; ``reset()`` gives a fresh account with the admin user."""

    def __init__(self, url: str, record_path: Path) -> None:
        self.url = url
        self.record_path = record_path
        self.admin = Credentials("", "")

    def _post(self, path: str, data: str = "") -> None:
        requests.post(f"{self.url}/moto-api/{path}", data=data, timeout=30).raise_for_status()

    def enforce(self, on: bool) -> None:
        self._post("reset-auth", "0" if on else "inf")

    @contextmanager
    def paused(self) -> Iterator[None]:
        self.enforce(False)
        try:
            yield
        finally:
            self.enforce(True)

    def reset(self) -> None:
        """Empty the emulator and its record; create the admin; enforce from here on."""
        self.enforce(False)
        self._post("reset")
        self.record_path.write_text("")
        iam = self.client("iam", Credentials("testing", "testing"))
        iam.create_user(UserName="rig-admin")
        iam.put_user_policy(
            UserName="rig-admin", PolicyName="all", PolicyDocument=json.dumps(ALLOW_ALL)
        )
        key = iam.create_access_key(UserName="rig-admin")["AccessKey"]
        self.admin = Credentials(key["AccessKeyId"], key["SecretAccessKey"])
        self.enforce(True)

    def client(self, service: str, creds: Credentials | None = None) -> Any:
        import boto3

        creds = creds or self.admin
        return boto3.session.Session(
            aws_access_key_id=creds.access_key_id,
            aws_secret_access_key=creds.secret_access_key,
            aws_session_token=creds.session_token,
            region_name=REGION,
        ).client(service, endpoint_url=self.url)

    def create_user(self, name: str, policy: dict[str, Any]) -> Credentials:
        """An IAM user whose only permissions are ``policy`` (inline)."""
        iam = self.client("iam")
        iam.create_user(UserName=name)
        iam.put_user_policy(UserName=name, PolicyName=name, PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return Credentials(key["AccessKeyId"], key["SecretAccessKey"])

    def assume_role(self, role_arn: str, session: str = "i-instance") -> Credentials:
        """The role's temporary credentials, as EC2 hands them to the instance."""
        with self.paused():
            creds = self.client("sts").assume_role(RoleArn=role_arn, RoleSessionName=session)
        c = creds["Credentials"]
        return Credentials(c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])

    @contextmanager
    def trusting_session(self, role_name: str, role_arn: str, session: str) -> Iterator[None]:
        """Within the block ``role_name`` trusts the session ``session`` of ``role_arn`` as moto
        can see it. AWS lets a trust policy that names a role admit every session of that role;
        moto compares the principal literally with the caller's assumed-role ARN (and drops the
        role's path), so such a trust refuses there. The real document is put back afterwards;
        the tests check it as written."""
        iam = self.client("iam")
        real = iam.get_role(RoleName=role_name)["Role"]["AssumeRolePolicyDocument"]
        account, name = role_arn.split(":")[4], role_arn.rsplit("/", 1)[1]
        principal = f"arn:aws:sts::{account}:assumed-role/{name}/{session}"
        moto_sees = {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"AWS": principal}, "Action": "sts:AssumeRole"}
            ],
        }
        iam.update_assume_role_policy(RoleName=role_name, PolicyDocument=json.dumps(moto_sees))
        try:
            yield
        finally:
            iam.update_assume_role_policy(RoleName=role_name, PolicyDocument=json.dumps(real))

    def role_documents(self, role_name: str) -> dict[str, dict[str, Any]]:
        """The role's inline policies as written, by name."""
        iam = self.client("iam")
        names = iam.list_role_policies(RoleName=role_name)["PolicyNames"]
        return {n: _document(iam.get_role_policy(RoleName=role_name, PolicyName=n)) for n in names}

    @contextmanager
    def resources_widened(self, role_name: str) -> Iterator[list[dict[str, Any]]]:
        """Within the block the role's inline policies grant their actions on Resource "*"
        (all moto can match); yields the real documents, for :func:`rig.iam.policy.evaluate`
        to check the resources. The real documents are put back afterwards."""
        iam = self.client("iam")
        real = self.role_documents(role_name)
        for name, document in real.items():
            wide = json.dumps(widened(document))
            iam.put_role_policy(RoleName=role_name, PolicyName=name, PolicyDocument=wide)
        try:
            yield list(real.values())
        finally:
            for name, document in real.items():
                iam.put_role_policy(
                    RoleName=role_name, PolicyName=name, PolicyDocument=json.dumps(document)
                )

    def records(self, creds: Credentials | None = None) -> list[dict[str, Any]]:
        """Recorded requests, all or those signed with ``creds``."""
        lines = self.record_path.read_text().splitlines()
        entries = [json.loads(line) for line in lines if line.strip()]
        if creds is None:
            return entries
        return [e for e in entries if e.get("access_key") == creds.access_key_id]


def _document(answer: dict[str, Any]) -> dict[str, Any]:
    document = answer["PolicyDocument"]
    return json.loads(document) if isinstance(document, str) else document


@contextmanager
def enforcing_emulator(scratch: Path) -> Iterator[EnforcingEmulator]:
    """Start the server process; stop it on the way out."""
    port = free_port()
    record = scratch / "requests.jsonl"
    record.write_text("")
    log = scratch / "moto-server.log"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "rig.iam.server", str(port), str(record)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the enforcing moto server exited: {log.read_text()}")
            try:
                requests.get(f"{url}/moto-api/data.json", timeout=10)
                break
            except requests.RequestException:  # not listening yet, or slow to answer at first
                if time.monotonic() > deadline:
                    raise RuntimeError("the enforcing moto server did not start in 60 s") from None
                time.sleep(0.2)
        emulator = EnforcingEmulator(url, record)
        emulator.reset()
        yield emulator
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
