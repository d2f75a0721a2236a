"""bench/serving_plan.py: every supported type, the plan next to the old 1,024-token default."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from qwen3vl_aws.aws.catalog import instance_types
from qwen3vl_aws.serving.planner import plan_serving

BENCH = Path(__file__).resolve().parents[2] / "bench" / "serving_plan.py"


def load_bench():
    spec = importlib.util.spec_from_file_location("serving_plan_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_json_covers_every_type_and_1080p_fits_only_with_the_plan(capsys):
    bench = load_bench()
    assert bench.main(["--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [row["instance_type"] for row in rows] == list(instance_types())
    for row in rows:
        plan, default = row["plan"], row["default"]
        assert plan["fits_1080p"] and not default["fits_1080p"]
        assert default["max_model_len"] == bench.OLD_MAX_MODEL_LEN < plan["max_model_len"]
        assert plan["max_model_len"] == plan_serving(row["instance_type"]).max_model_len
        assert plan["concurrency"] >= 1
        # the old flags over-ran an A10G's memory on the real GPU (bench/gpu-measurements.md):
        # within 0.95 of a 24 GB card the calibrated model leaves them no KV cache either
        if row["gpus"].endswith("A10G") or row["gpus"].endswith("L4"):
            assert default["kv_tokens"] == 0


def test_table_prints_both_rows_per_type(capsys):
    assert load_bench().main([]) == 0
    out = capsys.readouterr().out
    for name in instance_types():
        assert name in out
    assert out.count("(default)") == len(instance_types())
