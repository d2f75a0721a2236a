"""The start timeline: steps from the instance's status record, last start next to the first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from qwen3vl_aws.instance.timeline import (
    ENGINE_LINES,
    build_timeline,
    describe_weights,
    engine_timings,
    launch_times,
)

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def at(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


# vLLM 0.32's format strings (gpu_model_runner.py, core.py), filled as it fills them.
LOAD = "Model loading took %s GiB memory and %.6f seconds"
INIT = "init engine (profile, create kv cache, warmup model) took %.2f s (compilation: %.2f s)"
GRAPHS = "Graph capturing finished in %.0f secs, took %.2f GiB"
ENGINE_LOG = "\n".join(
    [
        "(EngineCore pid=1) INFO [gpu_model_runner.py] " + LOAD % ("16.69", 31.2845),
        "(EngineCore pid=1) INFO [core.py] " + INIT % (79.5, 47.8),
        "(EngineCore pid=1) INFO [gpu_model_runner.py] " + GRAPHS % (12, 0.6),
    ]
)


def record(offset: float, *, weights: dict | None = None, log: str = ENGINE_LOG) -> dict:
    spans = {
        "packages": (20, 140),
        "model": (25, 60),
        "configure": (140, 145),
        "engine": (145, 146),
        "ready": (146, 230),
    }
    return {
        "booted_at": at(offset + 10),
        "stages": [
            {
                "name": n,
                "state": "done",
                "started_at": at(offset + a),
                "finished_at": at(offset + b),
            }
            for n, (a, b) in spans.items()
        ],
        "weights": weights,
        "engine_log": log,
    }


def steps(timeline_steps: list) -> dict[str, float | None]:
    return {s.name: s.seconds for s in timeline_steps}


def test_engine_timings_read_vllms_own_lines_and_the_last_start_wins() -> None:
    again = ENGINE_LOG.replace("31.284500", "4.000000")
    assert engine_timings(ENGINE_LOG + "\n" + again) == {
        "engine load": 4.0,
        "compile": 47.8,
        "CUDA graphs": 12.0,
    }
    assert engine_timings("nothing of interest\n") == {}
    assert set(ENGINE_LINES) == {"engine load", "compile", "CUDA graphs"}


def test_engine_timings_read_the_gpu_run_of_vllm_0_26_too() -> None:
    """vLLM 0.26's V2 model runner drops "memory" from its load line. These are its lines from
    the lent H200 (bench/gpu-measurements.md, the S3-streaming run), verbatim."""
    log = "\n".join(
        [
            "(EngineCore pid=987) INFO 12-02 07:37:34 [model_runner.py:305] Model loading took"
            " 0.06 GiB and 1.749483 seconds",
            "(EngineCore pid=987) INFO 12-02 07:37:54 [model_runner.py:747] Graph capturing"
            " finished in 1 secs, took 0.11 GiB",
            "(EngineCore pid=987) INFO 12-02 07:38:07 [core.py:340] init engine (profile, create"
            " kv cache, warmup model) took 32.63 s (compilation: 15.25 s)",
        ]
    )
    assert engine_timings(log) == {"engine load": 1.749483, "compile": 15.25, "CUDA graphs": 1.0}


def test_a_start_is_timed_from_launch_to_first_answer() -> None:
    weights = {"source": "s3", "bytes": 17_000_000_000, "seconds": 20.0}
    timeline = build_timeline(record(0, weights=weights), T0, None)
    got = steps(timeline.last)
    assert got["boot"] == 20  # launch to the bootstrap's first stage
    assert got["packages"] == 120 and got["weights"] == 35 and got["configure"] == 5
    assert got["engine load"] == 31.2845 and got["compile"] == 47.8 and got["CUDA graphs"] == 12
    assert got["first answer"] == 230 - 145
    assert got["total"] == 230
    detail = {s.name: s.detail for s in timeline.last}
    assert detail["weights"] == "s3, 17.0 GB at 850 MB/s"
    assert detail["boot"] == "OS up 10s"
    assert timeline.first is None
    assert [row[1] for row in timeline.rows()] == ["-"] * len(timeline.last)


def test_the_first_start_is_shown_next_to_the_last() -> None:
    first_launch, last_launch = T0, T0 + timedelta(days=2)
    status = record(2 * 86400, weights={"source": "local-disk", "bytes": 17e9, "seconds": 0})
    status["first_start"] = record(0, weights={"source": "hub", "bytes": 17e9, "seconds": 400.0})
    timeline = build_timeline(status, last_launch, first_launch)
    rows = {row[0]: row for row in timeline.rows()}
    assert rows["total"][1:3] == ("230s", "230s")
    assert rows["weights"][3] == "local-disk, 17.0 GB"  # nothing moved: no rate
    assert timeline.to_json()["first_start"][2]["detail"] == "hub, 17.0 GB at 42 MB/s"


def test_weights_streamed_from_s3_are_timed_by_the_engine_load() -> None:
    """Streamed, the weights move while vLLM loads them: the weights step is only the probe of
    the cache, and the rate comes from the engine's own load time."""
    streamed = {"source": "s3-stream", "bytes": 17_000_000_000, "seconds": 0}
    timeline = build_timeline(record(0, weights=streamed), T0, None)
    detail = {s.name: s.detail for s in timeline.last}
    assert detail["weights"] == "s3 (streamed), 17.0 GB at 543 MB/s"  # 17 GB in 31.2845 s
    # Before the engine has logged its load (or when its log is not kept), the source alone.
    assert describe_weights(streamed) == "17.0 GB streamed from S3 during the engine load"


def test_unrecorded_steps_stay_empty_rather_than_zero() -> None:
    status = record(0, log="")
    status.pop("booted_at")
    got = steps(build_timeline(status, None, None).last)
    assert got["boot"] is None and got["total"] is None
    assert got["engine load"] is None and got["compile"] is None
    assert describe_weights(None) == ""


def test_launch_times_are_this_starts_and_the_root_volumes_first_attach() -> None:
    instance = {
        "LaunchTime": T0 + timedelta(days=2),
        "RootDeviceName": "/dev/sda1",
        "BlockDeviceMappings": [
            {"DeviceName": "/dev/sdb", "Ebs": {"AttachTime": T0 + timedelta(days=1)}},
            {"DeviceName": "/dev/sda1", "Ebs": {"AttachTime": T0}},
        ],
    }
    assert launch_times(instance) == (T0 + timedelta(days=2), T0)
