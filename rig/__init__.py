"""The instance's pieces run for real on this machine: the node tests' rig and ``make demo``.

``vllm`` serves a tiny random Qwen3-VL model (built by ``tiny_model``) with vLLM's CPU build,
``gateway`` runs the bootstrap's render stage, the key sync and nginx in a scratch root, and
``standins`` replaces the host tools that need systemd or a GPU. Nothing here imports pytest.
"""
