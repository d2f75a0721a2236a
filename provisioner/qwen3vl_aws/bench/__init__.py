"""Load tests against the endpoint (``qwen3vl-aws bench``): the runner and its chart."""
