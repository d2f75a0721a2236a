"""The endpoint under abuse, for real: nginx with the rendered config in front of vLLM started
with the engine environment the bootstrap renders (issue 10, findings 1, 2 and 8).

- Image bombs: a small PNG that decodes to far more pixels than the plan serves is refused with
  a 400 before it is decoded; several at once leave the engine answering and its memory flat.
- Images per prompt are capped by the plan's ``--limit-mm-per-prompt``.
- Loopback fetches: an image URL on the host never reaches a server there, and the error does
  not depend on whether the port is open (no port scanning through the engine).
- A real 1080p photo-sized image (several MB of base64) goes through the gateway and is answered.
"""

from __future__ import annotations

import base64
import io
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from test_gateway import auth, chat_body, image_data_url, tls_context

from rig.gateway import Gateway
from rig.net import free_port
from rig.vllm import VllmServer

pytestmark = [pytest.mark.node, pytest.mark.slow]

BOMBS_AT_ONCE = 3
RSS_SAMPLE_S = 0.05


def png_data_url(image) -> str:
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=9)
    return f"data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}"


def bomb_side(serving_plan) -> int:
    """A square image of eight times the pixels of the largest image the plan serves: what a
    compressed bomb decodes to (the plan scales anything above its largest image down)."""
    return int((8 * serving_plan.largest_image_pixels) ** 0.5)


def group_rss_bytes(pgid: int) -> int:
    """Resident memory of every process in the engine's process group (API server, engine)."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[2]) != pgid:  # field 5 of stat: the process group
                continue
            status = (entry / "status").read_text()
        except (OSError, IndexError, ValueError):
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total


class RssPeak:
    """Samples the group's resident memory in a thread; ``peak`` is the highest seen."""

    def __init__(self, pgid: int) -> None:
        self.pgid = pgid
        self.peak = group_rss_bytes(pgid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(RSS_SAMPLE_S):
            self.peak = max(self.peak, group_rss_bytes(self.pgid))

    def __enter__(self) -> RssPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@pytest.fixture
def http(gateway: Gateway) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.base_url, verify=tls_context(gateway), timeout=300) as c:
        yield c


def post_chat(http: httpx.Client, gateway: Gateway, content: object) -> httpx.Response:
    return http.post(
        "/v1/chat/completions",
        json=chat_body(gateway, content),
        headers=auth(gateway.current_key),
    )


def image_part(url: str) -> dict[str, object]:
    return {"type": "image_url", "image_url": {"url": url}}


def assert_client_error(response: httpx.Response) -> dict[str, object]:
    """A 400-class answer with an OpenAI-style JSON error body; returns the error object."""
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["message"]
    return error


def assert_engine_answers(http: httpx.Client, gateway: Gateway) -> None:
    reply = post_chat(http, gateway, [image_part(image_data_url()), {"type": "text", "text": "Hi"}])
    assert reply.status_code == 200, reply.text
    assert reply.json()["usage"]["completion_tokens"] >= 1


# --- finding 1: image bombs -------------------------------------------------------------------


def test_image_bombs_are_refused_before_decoding_and_the_engine_stays_up(
    http: httpx.Client, gateway: Gateway, vllm_server: VllmServer, serving_plan
):
    from PIL import Image

    side = bomb_side(serving_plan)
    # One bit per pixel here; the engine would decode it to 3 bytes per pixel (RGB).
    bomb = png_data_url(Image.new("1", (side, side), 1))
    decoded_bytes = side * side * 3
    assert len(bomb) < decoded_bytes // 100  # small on the wire, large once decoded
    assert_engine_answers(http, gateway)  # warm: first-use allocations are not the bombs'
    content = [image_part(bomb), {"type": "text", "text": "What is this?"}]
    with RssPeak(vllm_server.pid) as rss, ThreadPoolExecutor(BOMBS_AT_ONCE) as pool:
        before = group_rss_bytes(vllm_server.pid)
        answers = list(pool.map(lambda _: post_chat(http, gateway, content), range(BOMBS_AT_ONCE)))
    for answer in answers:
        error = assert_client_error(answer)
        assert answer.status_code == 400
        assert "pixels" in error["message"]
    # Not one of them was decoded: the engine grew by less than one decoded bomb.
    assert rss.peak - before < decoded_bytes, (
        f"engine memory grew by {(rss.peak - before) / 2**20:.0f} MiB during "
        f"{BOMBS_AT_ONCE} bombs of {side}x{side} ({decoded_bytes / 2**20:.0f} MiB decoded each)"
    )
    assert_engine_answers(http, gateway)


def flag_value(flags: list[str], name: str) -> str:
    assert name in flags, f"the plan renders no {name}: {flags}"
    return flags[flags.index(name) + 1]


def test_images_per_prompt_are_capped_by_the_plan(
    http: httpx.Client, gateway: Gateway, serving_plan
):
    limit = int(flag_value(serving_plan.flags, "--limit-mm-per-prompt.image"))
    small = image_part(image_data_url())
    question = {"type": "text", "text": "Compare them."}
    at_limit = post_chat(http, gateway, [small] * limit + [question])
    assert at_limit.status_code == 200, at_limit.text
    over = post_chat(http, gateway, [small] * (limit + 1) + [question])
    error = assert_client_error(over)
    assert over.status_code == 400
    assert str(limit) in error["message"]


# --- finding 2: loopback and private fetches -------------------------------------------------


class CountingHandler(BaseHTTPRequestHandler):
    """Answers every GET with a small PNG and records the path (the server's ``seen``)."""

    def do_GET(self) -> None:
        self.server.seen.append(self.path)  # type: ignore[attr-defined]
        body = base64.b64decode(image_data_url().split(",", 1)[1])
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def host_server() -> Iterator[ThreadingHTTPServer]:
    """A server on every local address of a free port, standing in for anything on the host
    (the engine's own API, a metrics exporter, ...)."""
    server = ThreadingHTTPServer(("0.0.0.0", free_port()), CountingHandler)
    server.seen = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_image_urls_on_the_host_are_never_fetched_and_ports_cannot_be_told_apart(
    http: httpx.Client, gateway: Gateway, host_server
):
    open_port = host_server.server_address[1]
    closed_port = free_port()
    hosts = ["127.0.0.1", "127.3.2.1", "localhost", "0.0.0.0"]
    answers = {}
    for host in hosts:
        for port in (open_port, closed_port):
            url = f"http://{host}:{port}/cat.png"
            started = time.monotonic()
            answer = post_chat(http, gateway, [image_part(url), {"type": "text", "text": "?"}])
            answers[host, port] = (answer, time.monotonic() - started)
    assert host_server.seen == [], f"the engine fetched {host_server.seen} from the host"
    for (host, port), (answer, _) in answers.items():
        error = assert_client_error(answer)
        assert answer.status_code == 400, (host, port)
        assert str(port) not in error["message"]
    # The same answer whether something listens on the port or not.
    for host in hosts:
        opened, closed = answers[host, open_port][0], answers[host, closed_port][0]
        assert (opened.status_code, opened.json()) == (closed.status_code, closed.json())


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",  # the instance metadata service
        "http://[fd00:ec2::254]/latest/meta-data/",  # its IPv6 address
        "http://10.0.0.2/x.png",  # the VPC (private)
        "http://100.64.0.1/x.png",  # carrier-grade NAT
        "http://[::1]/x.png",
        "http://[::ffff:127.0.0.1]/x.png",  # loopback written as IPv4-mapped IPv6
    ],
)
def test_image_urls_in_private_or_metadata_ranges_are_refused_at_once(
    http: httpx.Client, gateway: Gateway, url: str
):
    started = time.monotonic()
    answer = post_chat(http, gateway, [image_part(url), {"type": "text", "text": "?"}])
    elapsed = time.monotonic() - started
    assert_client_error(answer)
    assert answer.status_code == 400
    # Refused by the address, not after a connection attempt timed out.
    assert elapsed < 5, f"{url} took {elapsed:.1f} s: a connection was attempted"


# --- finding 8: a real 1080p image through the gateway ---------------------------------------


def test_a_1080p_image_of_several_megabytes_is_answered(http: httpx.Client, gateway: Gateway):
    from PIL import Image

    # Noise does not compress: a photo-sized PNG of several MB, as a phone or camera sends.
    image = Image.frombytes("RGB", (1920, 1080), os.urandom(1920 * 1080 * 3))
    url = png_data_url(image)
    assert len(url) > 4 * 2**20
    question = {"type": "text", "text": "What is this?"}
    text_only = post_chat(http, gateway, [question])
    with_image = post_chat(http, gateway, [image_part(url), question])
    assert with_image.status_code == 200, with_image.text
    # The picture reached the vision tower: it became image tokens in the prompt.
    grown = with_image.json()["usage"]["prompt_tokens"] - text_only.json()["usage"]["prompt_tokens"]
    assert grown > 1000
