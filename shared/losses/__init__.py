"""Loss-balancing strategies, chosen by name in an app's config.

>>> create_balancer("uncertainty", ["det", "seg"]).tasks
['det', 'seg']
"""

from __future__ import annotations

from polyhead.losses.base import LossBalancer
from polyhead.losses.fixed import FixedWeights
from polyhead.losses.pcgrad import PCGrad
from polyhead.losses.uncertainty import UncertaintyWeighting

BALANCERS: dict[str, type[LossBalancer]] = {
    "fixed": FixedWeights,
    "uncertainty": UncertaintyWeighting,
    "pcgrad": PCGrad,
}


def create_balancer(name: str, tasks: list[str], weights: dict[str, float] | None = None) -> LossBalancer:
    """Build a balancer by name: ``fixed``, ``uncertainty`` or ``pcgrad``."""
    if name not in BALANCERS:
        raise ValueError(f"unknown loss balancing '{name}'; choose one of {', '.join(BALANCERS)}")
    if name == "uncertainty":
        return UncertaintyWeighting(tasks)
    return BALANCERS[name](tasks, weights)


__all__ = ["BALANCERS", "FixedWeights", "LossBalancer", "PCGrad", "UncertaintyWeighting", "create_balancer"]
