"""qwen3vl_bundle.py REGION BUCKET KEY SHA256 STAMP: stage 0's fetch, verify and install.

Fetches the bundle (JSON {path: {mode, content}}) with the instance role's credentials
(s3:GetObject on this one object: read-instance-files in terraform/iam.tf), refuses it unless its
sha256 is the one the user data names, checks every entry, and only then writes each file
(atomically, with its mode) under QWEN3VL_ROOT, and the digest to STAMP last.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import sys
import tempfile

DENIED = {"AccessDenied", "AccessDeniedException", "403"}


def fail(message: str, code: int = 1) -> None:
    print(f"qwen3vl-bundle: {message}", file=sys.stderr)
    sys.exit(code)


def fetch(region: str, bucket: str, key: str) -> bytes:
    import boto3
    import botocore.exceptions
    from botocore.config import Config

    action, arn = "s3:GetObject", f"arn:aws:s3:::{bucket}/{key}"
    s3 = boto3.client("s3", region_name=region, config=Config(retries={"mode": "standard"}))
    try:
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except botocore.exceptions.NoCredentialsError:
        fail(f"no AWS credentials for {action}: is the instance profile attached to the instance?")
    except botocore.exceptions.ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        if code in DENIED or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 403:
            fail(
                f"access denied: the instance role may not call {action} on {arn} "
                "(its policy is read-instance-files in terraform/iam.tf)",
                3,
            )
        fail(f"{action} on {arn} failed: {code}: {error.get('Message', exc)}")
    except botocore.exceptions.BotoCoreError as exc:
        fail(f"{action} on {arn} failed: {exc}")
    raise AssertionError("unreachable")


def entries(data: bytes) -> dict[str, tuple[int, str]]:
    """The bundle's files, each checked: an absolute, normalised path, an octal mode, text."""
    files = {}
    for path, spec in json.loads(data).items():
        mode, content = spec.get("mode", ""), spec.get("content")
        if not path.startswith("/") or posixpath.normpath(path) != path:
            fail(f"bundle entry {path!r} is not an absolute, normalised path; nothing installed")
        if len(mode) != 4 or any(c not in "01234567" for c in mode) or not isinstance(content, str):
            fail(f"bundle entry {path} has no octal mode or text content; nothing installed")
        files[path] = (int(mode, 8), content)
    return files


def write(dest: str, content: bytes, mode: int) -> None:
    """Replace ``dest`` atomically: a temporary file beside it, its mode, then rename."""
    os.makedirs(os.path.dirname(dest), mode=0o755, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(dest), prefix=".qwen3vl-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(content)
        os.chmod(tmp, mode)
        os.replace(tmp, dest)
    except BaseException:
        os.unlink(tmp)
        raise


def main(argv: list[str]) -> None:
    if len(argv) != 5:
        fail("usage: qwen3vl_bundle.py REGION BUCKET KEY SHA256 STAMP", 2)
    region, bucket, key, expected, stamp = argv
    data = fetch(region, bucket, key)
    digest = hashlib.sha256(data).hexdigest()
    if digest != expected:
        fail(
            f"s3://{bucket}/{key} has sha256 {digest}, but the user data names {expected}: "
            "refusing it, nothing installed",
            4,
        )
    root = os.environ.get("QWEN3VL_ROOT", "")
    files = entries(data)
    for path, (mode, content) in sorted(files.items()):
        write(root + path, content.encode(), mode)
    write(stamp, f"{digest}\n".encode(), 0o644)
    print(f"qwen3vl-bundle: installed {len(files)} files from s3://{bucket}/{key}")


if __name__ == "__main__":
    main(sys.argv[1:])
