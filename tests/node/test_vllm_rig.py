"""The vLLM rig: GPU flags swapped for CPU ones, and a real vLLM server answering on loopback."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from rig.vllm import CPU_KV_CACHE_BYTES, VllmServer, cpu_engine_args

if TYPE_CHECKING:
    from openai import OpenAI

QUESTION = "What is in this picture?"


class TestCpuEngineArgs:
    def test_gpu_flags_are_swapped_and_the_rest_kept_in_order(self) -> None:
        args = [
            "--max-model-len",
            "16384",
            "--gpu-memory-utilization",
            "0.92",
            "--tensor-parallel-size=2",
            "--enable-prefix-caching",
            "--async-scheduling",
            "--limit-mm-per-prompt",
            '{"image": 4, "video": 0}',
            "--max-cudagraph-capture-size",
            "64",
        ]
        assert cpu_engine_args(args) == [
            "--max-model-len",
            "16384",
            "--enable-prefix-caching",
            "--limit-mm-per-prompt",
            '{"image": 4, "video": 0}',
            "--enforce-eager",
            "--kv-cache-memory-bytes",
            CPU_KV_CACHE_BYTES,
        ]

    def test_rig_owned_flags_are_dropped(self) -> None:
        args = ["--host", "0.0.0.0", "--port=8000", "--served-model-name", "x", "--dtype", "auto"]
        assert cpu_engine_args(args)[:2] == ["--dtype", "auto"]

    def test_applying_twice_changes_nothing(self) -> None:
        once = cpu_engine_args(["--max-num-seqs", "8", "--enforce-eager"])
        assert cpu_engine_args(once) == once
        assert once.count("--enforce-eager") == 1

    def test_values_equal_to_cpu_flag_values_are_kept(self) -> None:
        args = ["--swap-space", CPU_KV_CACHE_BYTES]
        assert cpu_engine_args(args)[:2] == args

    def test_a_flag_missing_its_value_is_an_error(self) -> None:
        with pytest.raises(ValueError, match="--gpu-memory-utilization"):
            cpu_engine_args(["--max-num-seqs", "8", "--gpu-memory-utilization"])


def _image_data_url(fmt: str) -> str:
    """A small deterministic picture (colour gradient) encoded as a data: URL."""
    from PIL import Image

    image = Image.new("RGB", (96, 64))
    image.putdata([(x * 2, y * 3, 128) for y in range(64) for x in range(96)])
    buf = io.BytesIO()
    image.save(buf, format=fmt)
    return f"data:image/{fmt.lower()};base64,{base64.b64encode(buf.getvalue()).decode()}"


@pytest.mark.slow
@pytest.mark.node
class TestVllmServer:
    @pytest.fixture
    def client(self, vllm_server: VllmServer) -> Iterator[OpenAI]:
        from openai import OpenAI

        # vLLM itself runs without a key: the gateway checks it.
        with OpenAI(base_url=f"{vllm_server.base_url}/v1", api_key="unused", timeout=60) as c:
            yield c

    def test_models_lists_the_served_name(self, client: OpenAI, vllm_server: VllmServer) -> None:
        assert [m.id for m in client.models.list()] == [vllm_server.served_model_name]

    def test_text_chat_answers(self, client: OpenAI, vllm_server: VllmServer) -> None:
        reply = client.chat.completions.create(
            model=vllm_server.served_model_name,
            messages=[{"role": "user", "content": "Say hello."}],
            max_tokens=4,
            temperature=0,
        )
        choice = reply.choices[0]
        assert choice.message.role == "assistant"
        assert isinstance(choice.message.content, str)
        assert choice.finish_reason in ("stop", "length")
        assert 1 <= reply.usage.completion_tokens <= 4

    def test_streamed_chat_answers_in_chunks(self, client: OpenAI, vllm_server: VllmServer) -> None:
        tokens = 64
        stream = client.chat.completions.create(
            model=vllm_server.served_model_name,
            messages=[{"role": "user", "content": "Count to three."}],
            max_tokens=tokens,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
            # Exactly `tokens` tokens, so the answer cannot end after one.
            extra_body={"min_tokens": tokens, "ignore_eos": True},
        )
        chunks = list(stream)
        finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
        assert finishes[-1] == "length"
        assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == tokens
        # The answer arrives as it is generated, not as one buffered piece. Not one chunk per
        # token: vLLM merges the deltas its HTTP side has not taken yet when that side lags
        # (CI's busy machine saw 4 tokens in 3 chunks).
        content = [c for c in chunks if c.choices and c.choices[0].delta.content]
        assert len(content) >= 2, f"{tokens} tokens came in {len(content)} chunk(s)"

    @pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
    def test_image_chat_answers(self, client: OpenAI, vllm_server: VllmServer, fmt: str) -> None:
        def ask(content: object) -> int:
            reply = client.chat.completions.create(
                model=vllm_server.served_model_name,
                messages=[{"role": "user", "content": content}],
                max_tokens=4,
                temperature=0,
            )
            assert reply.usage.completion_tokens >= 1
            return reply.usage.prompt_tokens

        text_only = ask([{"type": "text", "text": QUESTION}])
        with_image = ask(
            [
                {"type": "image_url", "image_url": {"url": _image_data_url(fmt)}},
                {"type": "text", "text": QUESTION},
            ]
        )
        # The picture went through the vision tower: it became image tokens in the prompt.
        assert with_image > text_only + 2
