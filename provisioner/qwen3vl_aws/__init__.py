"""qwen3vl-aws: Qwen3-VL-8B-Instruct on AWS GPUs behind a secure OpenAI-compatible endpoint."""

__version__ = "0.1.0"
