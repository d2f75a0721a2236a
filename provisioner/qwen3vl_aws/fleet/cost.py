"""What a fleet costs per hour at its bounds: the replicas (on-demand, or spot above the
on-demand base) and the load balancer's own hourly charge.

The load balancer's price is AWS's us-east-1 list price (other regions differ by cents): a fixed
charge per hour it exists, plus load balancer capacity units (LCU) that grow with traffic, which
this cannot know in advance and says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..aws.pricing import Price, SpotPrice
    from .options import FleetOptions

#: Application Load Balancer, us-east-1 list prices (USD): per hour, and per LCU-hour.
ALB_USD_PER_HOUR = 0.0225
ALB_USD_PER_LCU_HOUR = 0.008


@dataclass(frozen=True)
class FleetCost:
    """Hourly cost at MIN and at MAX replicas, with the prices it was made from."""

    min_size: int
    max_size: int
    on_demand_usd: float  # one replica, per hour
    spot: SpotPrice | None  # None: no --spot (or EC2 had no spot price)
    on_demand_base: int  # replicas that stay on-demand when spot is used

    def replicas_usd(self, replicas: int) -> float:
        """The replicas' hourly cost: the base on-demand, the rest at the typical spot price."""
        if self.spot is None:
            return replicas * self.on_demand_usd
        on_demand = min(replicas, self.on_demand_base)
        return on_demand * self.on_demand_usd + (replicas - on_demand) * self.spot.typical

    def at(self, replicas: int) -> float:
        """Replicas plus the load balancer's fixed hourly charge (LCU not included)."""
        return self.replicas_usd(replicas) + ALB_USD_PER_HOUR

    def to_json(self) -> dict[str, Any]:
        spot = self.spot
        return {
            "replicas": {"min": self.min_size, "max": self.max_size},
            "on_demand_usd_per_hour": self.on_demand_usd,
            "spot_usd_per_hour": None
            if spot is None
            else {"lowest": spot.lowest, "typical": spot.typical, "by_zone": spot.by_zone},
            "load_balancer_usd_per_hour": ALB_USD_PER_HOUR,
            "load_balancer_usd_per_lcu_hour": ALB_USD_PER_LCU_HOUR,
            "usd_per_hour_at_min": round(self.at(self.min_size), 4),
            "usd_per_hour_at_max": round(self.at(self.max_size), 4),
        }

    def lines(self) -> list[str]:
        """The plan summary's lines about money."""
        found = [
            f"${self.at(self.min_size):.3f}/hour at {self.min_size} "
            f"(~${self.at(self.min_size) * 24:.2f}/day), ${self.at(self.max_size):.3f}/hour at "
            f"{self.max_size} replicas",
            f"of which the load balancer ${ALB_USD_PER_HOUR}/hour, plus "
            f"${ALB_USD_PER_LCU_HOUR} per LCU-hour of traffic",
        ]
        if self.spot is not None:
            zones = ", ".join(f"{z} ${p:.4f}" for z, p in self.spot.by_zone.items())
            found.append(
                f"spot ${self.spot.lowest:.4f}-${self.spot.typical:.4f}/hour (lowest-typical; "
                f"{zones}) beside ${self.on_demand_usd:.3f} on demand; "
                f"{self.on_demand_base} replica(s) stay on demand"
            )
        return found


def fleet_cost(options: FleetOptions, price: Price, spot: SpotPrice | None) -> FleetCost:
    """The fleet's hourly cost from the on-demand ``price`` and, with --spot, the spot price."""
    return FleetCost(
        min_size=options.min_size,
        max_size=options.max_size,
        on_demand_usd=price.usd_per_hour,
        spot=spot if options.spot else None,
        on_demand_base=options.effective("on_demand_base"),
    )
