"""``bench --chart``: latency and throughput against concurrency as a PNG (optional matplotlib)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import UsageError

if TYPE_CHECKING:
    from .runner import BenchReport


def write_chart(report: BenchReport, path: Path) -> Path:
    """Two panels over the measured levels: TTFT p50/p95 and inter-token latency (ms), and
    output tokens/s and requests/s. Needs matplotlib (``pip install 'qwen3vl-aws[chart]'``)."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only, never a window
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise UsageError(
            "--chart needs matplotlib: pip install 'qwen3vl-aws[chart]' (or matplotlib)."
        ) from exc

    levels = sorted(report.levels, key=lambda level: level.concurrency)
    x = [level.concurrency for level in levels]

    def ms(values: list[float | None]) -> list[float]:
        return [v * 1000 if v is not None else float("nan") for v in values]

    figure, (latency, throughput) = plt.subplots(1, 2, figsize=(11, 4.2))
    latency.plot(x, ms([lv.ttft_p50_s for lv in levels]), "o-", label="TTFT p50")
    latency.plot(x, ms([lv.ttft_p95_s for lv in levels]), "o--", label="TTFT p95")
    latency.plot(x, ms([lv.itl_mean_s for lv in levels]), "s-", label="inter-token (mean)")
    latency.set(title="Latency", xlabel="concurrent clients", ylabel="ms")
    throughput.plot(x, [lv.output_tokens_per_s for lv in levels], "o-", label="output tokens/s")
    requests = throughput.twinx()
    requests.plot(x, [lv.requests_per_s for lv in levels], "s--", color="tab:red", label="req/s")
    throughput.set(title="Throughput", xlabel="concurrent clients", ylabel="output tokens/s")
    requests.set_ylabel("requests/s")
    for axes in (latency, throughput):
        if max(x) / min(x) >= 8:  # a 1,4,16 sweep spreads evenly on a log scale
            axes.set_xscale("log", base=2)
        axes.set_xticks(x, [str(c) for c in x])
        axes.grid(alpha=0.3)
    latency.legend()
    handles = throughput.get_legend_handles_labels()
    extra = requests.get_legend_handles_labels()
    throughput.legend(handles[0] + extra[0], handles[1] + extra[1], loc="upper left")
    figure.suptitle(
        f"{report.config.model}: {report.config.prompt_tokens[0]}-{report.config.prompt_tokens[1]} "
        f"prompt / {report.config.output_tokens} output tokens, {report.config.images} image(s)"
    )
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
