"""Two rig replicas (a real vLLM and nginx gateway each) behind HAProxy configured from the
module's target group, under continuous load (rig/fleet.py, also bench/fleet.py): a rolling key
rotation (the product's fleet key sync over the rig's Run Command, real qwen3vl-keysync) fails no
request, draining a replica cuts no stream, and once a replica's engine stops
the balancer takes it out within the health check's window, every failure in that window
counted and none outside it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from rig.balancer import render_config, target_group
from rig.fleet import FleetReport, run_fleet

pytestmark = pytest.mark.slow


def test_balancer_follows_the_modules_target_group(tmp_path: Path) -> None:
    tg = target_group()
    config = render_config(tg, 8443, tmp_path / "x.pem", tmp_path / "s", {"r1": 1, "r2": 2})
    assert tg.algorithm == "least_outstanding_requests" and "balance leastconn" in config
    assert f"option httpchk GET {tg.health_path}" in config and tg.health_path == "/health"
    assert (
        f"inter {tg.interval_s}s fall {tg.unhealthy_threshold} rise {tg.healthy_threshold}"
        in config
    )
    assert "ssl verify none" in config  # an ALB does not verify its targets' certificates


@pytest.fixture(scope="module")
def fleet(moto_server: str, tmp_path_factory: pytest.TempPathFactory) -> FleetReport:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    return run_fleet(tmp_path_factory.mktemp("fleet"), moto_server, lambda _m: None)


def test_a_rolling_rotation_fails_no_request(fleet: FleetReport) -> None:
    assert fleet.rotate_failed == 0, fleet.failures
    # Over Run Command by instance ids: one command per sync (both keys, then the new one only),
    # one replica at a time.
    assert (fleet.rotate_commands, fleet.rotate_peak_running) == (2, 1)


def test_draining_a_replica_cuts_no_stream(fleet: FleetReport) -> None:
    assert fleet.drain_streams >= 1
    assert fleet.drain_cut == 0


def test_a_stopped_engine_leaves_within_the_health_check_window(fleet: FleetReport) -> None:
    tg = target_group()
    # DOWN after `unhealthy_threshold` failed checks; the first may start up to one interval late.
    assert fleet.down_after_s <= (tg.unhealthy_threshold + 1) * tg.interval_s + tg.timeout_s
    assert fleet.requests_to_stopped_after_down == 0
    # Every failure of the whole run fell in that window (counted, not hidden).
    assert fleet.failed == fleet.engine_stop_failed, (fleet.failures, fleet.phases)
    assert fleet.sent > fleet.failed


def test_the_replica_comes_back(fleet: FleetReport) -> None:
    assert fleet.wake_s > 0
    assert fleet.line().startswith("fleet: replicas=2 sent=")
