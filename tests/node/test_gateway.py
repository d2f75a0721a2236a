"""The gateway for real: nginx with the rendered config in front of vLLM serving the tiny model,
reached over TLS verified against the certificate the bootstrap made. The key check, the route
allowlist, the body limit, streaming, and a key change under load."""

from __future__ import annotations

import base64
import io
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from qwen3vl_aws.keys.keygen import generate_key

from rig.gateway import Gateway, run_script, write_deploy_env

pytestmark = [pytest.mark.node, pytest.mark.slow]

PROTECTED = [("GET", "/v1/models"), ("POST", "/v1/chat/completions"), ("POST", "/v1/completions")]
BODY_LIMIT = 32 * 1024 * 1024


def tls_context(gateway: Gateway) -> ssl.SSLContext:
    """Trust exactly the instance's certificate, with strict X.509 checks (Python 3.13's
    default), the way the CLI pins it."""
    context = ssl.create_default_context(cafile=str(gateway.cert_path))
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    return context


@pytest.fixture
def http(gateway: Gateway) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.base_url, verify=tls_context(gateway), timeout=60) as c:
        yield c


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def chat_body(gateway: Gateway, content: object, **extra: object) -> dict[str, object]:
    return {
        "model": gateway.served_model_name,
        "messages": [{"role": "user", "content": content}],
        "max_tokens": 4,
        "temperature": 0,
        **extra,
    }


def image_data_url() -> str:
    from PIL import Image

    image = Image.new("RGB", (96, 64))
    image.putdata([(x * 2, y * 3, 128) for y in range(64) for x in range(96)])
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return f"data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}"


def assert_openai_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"]


# --- what a client with the key gets -------------------------------------------------------


def test_tls_is_verified_against_the_instance_certificate(gateway: Gateway):
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"{gateway.base_url}/health", timeout=10)  # system trust store: refused
    response = httpx.get(f"{gateway.base_url}/health", verify=tls_context(gateway), timeout=10)
    assert response.status_code == 200


def test_health_needs_no_key(http: httpx.Client):
    assert http.get("/health").status_code == 200
    head = http.head("/health")  # what load balancers and uptime checks often send
    assert (head.status_code, head.content) == (200, b"")


def test_models_lists_the_served_name(http: httpx.Client, gateway: Gateway):
    response = http.get("/v1/models", headers=auth(gateway.current_key))
    assert response.status_code == 200
    assert [m["id"] for m in response.json()["data"]] == [gateway.served_model_name]


def test_text_chat_through_the_openai_client(gateway: Gateway):
    from openai import OpenAI

    http_client = httpx.Client(verify=tls_context(gateway))
    with OpenAI(
        base_url=f"{gateway.base_url}/v1", api_key=gateway.current_key, http_client=http_client
    ) as client:
        reply = client.chat.completions.create(
            model=gateway.served_model_name,
            messages=[{"role": "user", "content": "Say hello."}],
            max_tokens=4,
            temperature=0,
        )
    assert reply.choices[0].finish_reason in ("stop", "length")
    assert 1 <= reply.usage.completion_tokens <= 4


def test_streamed_chat_arrives_in_chunks(http: httpx.Client, gateway: Gateway):
    body = chat_body(gateway, "Count to three.", stream=True)
    with http.stream(
        "POST", "/v1/chat/completions", json=body, headers=auth(gateway.current_key)
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "data: [DONE]"
    assert len(events) >= 3  # role chunk, token chunk(s), [DONE]: not one buffered answer


def test_chat_with_a_base64_image(http: httpx.Client, gateway: Gateway):
    content = [
        {"type": "image_url", "image_url": {"url": image_data_url()}},
        {"type": "text", "text": "What is in this picture?"},
    ]
    response = http.post(
        "/v1/chat/completions", json=chat_body(gateway, content), headers=auth(gateway.current_key)
    )
    assert response.status_code == 200, response.text
    # The image's tokens are in the prompt: far more than the text alone.
    assert response.json()["usage"]["prompt_tokens"] > 20


def test_text_completion(http: httpx.Client, gateway: Gateway):
    body = {"model": gateway.served_model_name, "prompt": "Hello", "max_tokens": 2}
    response = http.post("/v1/completions", json=body, headers=auth(gateway.current_key))
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["text"] is not None


# --- what everyone else gets ---------------------------------------------------------------

BAD_AUTHORIZATION = {
    "missing": None,
    "wrong key": "Bearer " + generate_key(),
    "bare key": "{key}",
    "lowercase scheme": "bearer {key}",
    "basic scheme": "Basic {key}",
    "scheme only": "Bearer",
    "key with suffix": "Bearer {key}x",
    "two spaces": "Bearer  {key}",
}


@pytest.mark.parametrize(("method", "path"), PROTECTED)
@pytest.mark.parametrize("case", BAD_AUTHORIZATION)
def test_protected_routes_answer_401_without_the_right_key(
    http: httpx.Client, gateway: Gateway, method: str, path: str, case: str
):
    template = BAD_AUTHORIZATION[case]
    headers = (
        {} if template is None else {"Authorization": template.format(key=gateway.current_key)}
    )
    response = http.request(method, path, headers=headers, json={})
    assert_openai_error(response, 401, "invalid_api_key")
    assert gateway.current_key not in response.text


@pytest.mark.parametrize(
    "path",
    [
        "/metrics",
        "/tokenize",
        "/detokenize",
        "/invocations",
        "/load",
        "/ping",
        "/version",
        "/pause",
        "/v1/embeddings",
        "/v1/responses",
        "/v1/chat/completions/render",
        "/v2/rerank",
        "/inference/v1/generate",
        "/",
        "/v1",
        "/v1/models/",
        "/health/",
    ],
)
@pytest.mark.parametrize("with_key", [True, False], ids=["with-key", "no-key"])
def test_routes_off_the_allowlist_answer_404(
    http: httpx.Client, gateway: Gateway, path: str, with_key: bool
):
    headers = auth(gateway.current_key) if with_key else {}
    for method in ("GET", "POST"):
        response = http.request(method, path, headers=headers, json=chat_body(gateway, "Hi"))
        assert_openai_error(response, 404, "not_found")


def test_dot_segments_cannot_reach_a_hidden_route(gateway: Gateway):
    """Paths are normalised before the allowlist and passed on normalised."""
    request = (
        "POST /v1/models/../../invocations HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {gateway.current_key}\r\nContent-Length: 2\r\n"
        "Connection: close\r\n\r\n{}"
    )
    cert = str(gateway.cert_path)
    result = subprocess.run(
        ["openssl", "s_client", "-quiet", "-verify_return_error", "-CAfile", cert,
         "-connect", f"127.0.0.1:{gateway.port}", "-verify_ip", "127.0.0.1"],
        input=request, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.stdout.startswith("HTTP/1.1 404"), result.stdout + result.stderr


def test_oversized_body_answers_413(http: httpx.Client, gateway: Gateway):
    body = b'{"padding":"' + b"A" * BODY_LIMIT + b'"}'
    response = http.post(
        "/v1/chat/completions",
        content=body,
        headers={**auth(gateway.current_key), "Content-Type": "application/json"},
    )
    assert_openai_error(response, 413, "request_too_large")


# --- key changes ---------------------------------------------------------------------------


def test_key_change_reloads_gracefully_under_a_stream_of_requests(gateway: Gateway):
    """Streamed chats run back to back while the key file changes three times (each change a
    graceful nginx reload): none of them fails. Then the new key alone is accepted."""
    old, new, other = gateway.current_key, generate_key(), generate_key()
    context = tls_context(gateway)
    stop = threading.Event()
    outcomes: list[str] = []

    def stream_chats() -> None:
        # A new connection per request, as many clients do; keep-alive connections to the old
        # workers are closed by nginx between requests.
        limits = httpx.Limits(max_keepalive_connections=0)
        with httpx.Client(
            base_url=gateway.base_url, verify=context, timeout=60, limits=limits
        ) as client:
            while not stop.is_set():
                body = chat_body(gateway, "Count to ten.", stream=True, max_tokens=8)
                try:
                    with client.stream(
                        "POST", "/v1/chat/completions", json=body, headers=auth(old)
                    ) as response:
                        lines = list(response.iter_lines())
                    done = response.status_code == 200 and "data: [DONE]" in lines
                    outcomes.append("ok" if done else f"HTTP {response.status_code}")
                except httpx.HTTPError as exc:
                    outcomes.append(f"{type(exc).__name__}: {exc}")

    workers = [threading.Thread(target=stream_chats) for _ in range(2)]
    for worker in workers:
        worker.start()
    try:
        pids_before = gateway.accepting_workers()
        for current, pending in ((old, new), (old, other), (old, None)):
            started = len(outcomes)
            result = gateway.set_keys(current, pending)
            assert result.returncode == 0, result.stderr
            assert result.stdout.endswith("written; gateway reloaded\n")
            while len(outcomes) < started + 2 and all(w.is_alive() for w in workers):
                time.sleep(0.1)
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=120)
    # the workers were replaced: none from before accepts (stopping ones exit on their own time)
    assert gateway.accepting_workers().isdisjoint(pids_before)
    assert len(outcomes) >= 6
    assert [o for o in outcomes if o != "ok"] == []

    # Rotation finished: only the new key opens the endpoint.
    assert gateway.set_keys(new).returncode == 0
    with httpx.Client(base_url=gateway.base_url, verify=context, timeout=60) as client:
        assert client.get("/v1/models", headers=auth(new)).status_code == 200
        assert_openai_error(client.get("/v1/models", headers=auth(old)), 401, "invalid_api_key")


def test_keys_match_exactly_and_case_sensitively(gateway: Gateway):
    """A user-chosen key may contain '.', which must not act as a wildcard; case matters."""
    original = gateway.current_key
    dotted = "sk-user.Key." + "x" * 24
    assert gateway.set_keys(dotted).returncode == 0
    try:
        with httpx.Client(base_url=gateway.base_url, verify=tls_context(gateway)) as client:
            assert client.get("/v1/models", headers=auth(dotted)).status_code == 200
            for near_miss in (dotted.replace(".", "X"), dotted.upper(), dotted.lower()):
                response = client.get("/v1/models", headers=auth(near_miss))
                assert_openai_error(response, 401, "invalid_api_key")
    finally:
        assert gateway.set_keys(original).returncode == 0


# --- the bootstrap's readiness check, against the real engine -----------------------------


def test_bootstrap_ready_check_gets_a_real_answer(gateway: Gateway):
    result = run_script(gateway.root, "qwen3vl-bootstrap", "ready", env={"READY_TIMEOUT": "60"})
    assert result.returncode == 0, result.stdout + result.stderr


def test_bootstrap_ready_check_fails_when_the_model_name_is_wrong(gateway: Gateway):
    settings = {**gateway.settings(), "SERVED_MODEL_NAME": "not-the-served-model"}
    write_deploy_env(gateway.root, settings)
    try:
        result = run_script(gateway.root, "qwen3vl-bootstrap", "ready", env={"READY_TIMEOUT": "1"})
    finally:
        write_deploy_env(gateway.root, gateway.settings())
    assert result.returncode == 1
    assert "the engine did not answer within 1 s" in result.stdout
