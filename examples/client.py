"""Talk to a qwen3vl-aws endpoint with the official OpenAI SDK: text, streaming and images.

    export QWEN3VL_API_KEY="$(qwen3vl-aws key)"
    python examples/client.py text "Describe Qwen3-VL in one sentence."
    python examples/client.py stream "Count to five."
    python examples/client.py image photo.jpg "What is in this picture?"

The endpoint, served model name and pinned TLS certificate are read from the deployment that
`qwen3vl-aws apply` recorded (``qwen3vl-aws status --json``), unless QWEN3VL_ENDPOINT (the /v1
base URL), QWEN3VL_CACERT and QWEN3VL_MODEL name them. TLS is always verified.
"""

from __future__ import annotations

import base64
import json
import mimetypes
import os
import subprocess
import sys
from pathlib import Path

import httpx
from openai import OpenAI


def deployment_info() -> dict:
    """Endpoint, model name and certificate path: from the environment, else as the CLI recorded."""
    if os.environ.get("QWEN3VL_ENDPOINT"):
        return {
            "endpoint": os.environ["QWEN3VL_ENDPOINT"],
            "cert_path": os.environ["QWEN3VL_CACERT"],
            "served_model_name": os.environ.get("QWEN3VL_MODEL", "Qwen/Qwen3-VL-8B-Instruct"),
        }
    out = subprocess.run(
        ["qwen3vl-aws", "status", "--json"], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(out)


def make_client(info: dict) -> OpenAI:
    """An OpenAI client that trusts exactly the deployment's certificate."""
    return OpenAI(
        base_url=info["endpoint"],  # the OpenAI base URL, https://<address>/v1
        api_key=os.environ["QWEN3VL_API_KEY"],
        http_client=httpx.Client(verify=info["cert_path"], timeout=120),
    )


def image_part(path: Path) -> dict:
    """A chat content part carrying a local image inline (base64 data URL)."""
    mime = mimetypes.guess_type(path.name)[0] or "image/jpeg"
    data = base64.b64encode(path.read_bytes()).decode()
    return {"type": "image_url", "image_url": {"url": f"data:{mime};base64,{data}"}}


def main(argv: list[str]) -> None:
    if len(argv) < 2 or argv[0] not in {"text", "stream", "image"}:
        sys.exit(__doc__)
    info = deployment_info()
    client = make_client(info)
    model = info.get("served_model_name", "Qwen/Qwen3-VL-8B-Instruct")
    if argv[0] == "image":
        content: object = [image_part(Path(argv[1])), {"type": "text", "text": " ".join(argv[2:])}]
    else:
        content = " ".join(argv[1:])
    messages = [{"role": "user", "content": content}]
    if argv[0] == "stream":
        for chunk in client.chat.completions.create(
            model=model, messages=messages, stream=True, max_tokens=256
        ):
            if chunk.choices and chunk.choices[0].delta.content:
                print(chunk.choices[0].delta.content, end="", flush=True)
        print()
        return
    reply = client.chat.completions.create(model=model, messages=messages, max_tokens=256)
    print(reply.choices[0].message.content)


if __name__ == "__main__":
    main(sys.argv[1:])
