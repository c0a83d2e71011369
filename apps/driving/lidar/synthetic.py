"""Generated LiDAR-like scans with known answers: a (tilted) ground plane in rings plus box obstacles.

>>> cloud, truth = street_scan(np.random.default_rng(0))
>>> cloud.shape[1], len(truth)
(4, 3)
"""

from __future__ import annotations

import math

import numpy as np


def street_scan(
    rng: np.random.Generator,
    ground_z: float = -1.7,
    tilt_deg: float = 1.0,
    boxes: list[tuple[float, float, float, float, float, float]] | None = None,
) -> tuple[np.ndarray, list]:
    """(N, 4) x,y,z,intensity and the true boxes ``(cx, cy, length, width, height, yaw)`` standing on the ground."""
    boxes = (
        boxes
        if boxes is not None
        else [(12.0, -3.5, 4.4, 1.8, 1.5, 0.3), (8.0, 5.0, 0.6, 0.6, 1.75, 0.0), (20.0, 2.0, 1.8, 0.7, 1.7, -0.6)]
    )
    slope = math.tan(math.radians(tilt_deg))
    r = np.sqrt(rng.uniform(2.0**2, 45.0**2, 60000))
    a = rng.uniform(-math.pi, math.pi, len(r))
    x, y = r * np.cos(a), r * np.sin(a)
    z = ground_z + slope * x + rng.normal(0, 0.02, len(r))
    parts = [np.stack([x, y, z, rng.uniform(0, 0.3, len(r))], 1)]
    for cx, cy, l, w, h, yaw in boxes:
        n = int(300 * l * w + 200)
        u, v, t = rng.uniform(-l / 2, l / 2, n), rng.uniform(-w / 2, w / 2, n), rng.uniform(0.05, h, n)
        side = rng.integers(0, 3, n)  # points on the sides and the roof, like real returns
        u = np.where(side == 0, np.sign(u) * l / 2, u)
        v = np.where(side == 1, np.sign(v) * w / 2, v)
        t = np.where(side == 2, h, t)
        c, s = math.cos(yaw), math.sin(yaw)
        bx, by = cx + u * c - v * s, cy + u * s + v * c
        bz = ground_z + slope * bx + t
        parts.append(np.stack([bx, by, bz, rng.uniform(0.3, 1.0, n)], 1))
    # a tall wall far away: plane-like but vertical, must not become the ground
    wy = rng.uniform(-30, 30, 4000)
    wz = rng.uniform(ground_z, ground_z + 6, 4000)
    parts.append(np.stack([np.full(4000, 40.0), wy, wz, np.full(4000, 0.5)], 1))
    return np.concatenate(parts).astype(np.float32), boxes
