"""Ground plane, obstacle clusters and oriented boxes (open3d RANSAC + DBSCAN, cv2 footprints)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np


@dataclass
class LidarConfig:
    """Processing parameters (metres); defaults suit a roof-mounted 64-beam scanner (KITTI)."""

    range: tuple[float, float, float, float, float, float] = (-40.0, 70.0, -40.0, 40.0, -3.0, 3.0)
    voxel: float = 0.12
    ground_distance: float = 0.2  # RANSAC inlier distance, and the ground label's band
    max_tilt_deg: float = 15.0  # a ground plane must be this close to horizontal
    cluster_eps: float = 0.7
    cluster_min_points: int = 8
    min_box_points: int = 10
    max_height_above_ground: float = 4.0


@dataclass
class Box3D:
    """An oriented box in the LiDAR frame: centre (x, y, z), size (length, width, height), yaw about z."""

    center: np.ndarray
    size: np.ndarray
    yaw: float
    points: int
    label: str = "obstacle"

    def corners(self) -> np.ndarray:
        """(8, 3): bottom four counter-clockwise, then top four."""
        l, w, h = self.size
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        xy = np.array([[l, w], [-l, w], [-l, -w], [l, -w]]) / 2 @ np.array([[c, s], [-s, c]])
        bottom = np.hstack([xy + self.center[:2], np.full((4, 1), self.center[2] - h / 2)])
        return np.vstack([bottom, bottom + [0, 0, h]])

    def to_json(self) -> dict:
        return {
            "label": self.label,
            "center": np.round(self.center, 3).tolist(),
            "size_lwh": np.round(self.size, 3).tolist(),
            "yaw": round(float(self.yaw), 4),
            "points": int(self.points),
        }


@dataclass
class GroundPlane:
    """``a x + b y + c z + d = 0`` with ``c > 0`` (normal points up)."""

    coeffs: np.ndarray
    tilt_deg: float = field(default=0.0)

    def height_at(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        a, b, c, d = self.coeffs
        return -(a * x + b * y + d) / c

    def distance(self, xyz: np.ndarray) -> np.ndarray:
        """Signed distance (positive above the ground)."""
        return xyz @ self.coeffs[:3] + self.coeffs[3]


def crop(xyz: np.ndarray, rng: tuple[float, ...]) -> np.ndarray:
    """Boolean mask of points inside ``(xmin, xmax, ymin, ymax, zmin, zmax)``."""
    x0, x1, y0, y1, z0, z1 = rng
    return (
        (xyz[:, 0] >= x0)
        & (xyz[:, 0] <= x1)
        & (xyz[:, 1] >= y0)
        & (xyz[:, 1] <= y1)
        & (xyz[:, 2] >= z0)
        & (xyz[:, 2] <= z1)
    )


def voxel_down(xyz: np.ndarray, intensity: np.ndarray | None, size: float) -> tuple[np.ndarray, np.ndarray | None]:
    """Voxel-grid down-sampling (mean of each voxel); intensity is carried in a colour channel."""
    from polyhead.open3d_loader import open3d

    o3d = open3d()

    pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(xyz))
    if intensity is not None:
        pcd.colors = o3d.utility.Vector3dVector(np.repeat(intensity[:, None], 3, 1))
    down = pcd.voxel_down_sample(size)
    pts = np.asarray(down.points)
    return pts, (np.asarray(down.colors)[:, 0].copy() if intensity is not None else None)


def fit_ground(xyz: np.ndarray, cfg: LidarConfig, attempts: int = 4, seed: int = 0) -> GroundPlane | None:
    """RANSAC plane that is roughly horizontal; a tilted plane (a wall, a bus side) is set aside and
    the search repeats on the rest. ``None`` if no horizontal plane is found."""
    from polyhead.open3d_loader import open3d

    o3d = open3d()

    o3d.utility.random.seed(seed)
    rest = xyz
    for _ in range(attempts):
        if len(rest) < 50:
            return None
        pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(rest))
        coeffs, inliers = pcd.segment_plane(cfg.ground_distance, 3, 300)
        coeffs = np.asarray(coeffs, dtype=np.float64)
        coeffs /= np.linalg.norm(coeffs[:3])
        if coeffs[2] < 0:
            coeffs = -coeffs
        tilt = math.degrees(math.acos(min(1.0, abs(coeffs[2]))))
        if tilt <= cfg.max_tilt_deg:
            return GroundPlane(coeffs, tilt)
        keep = np.ones(len(rest), bool)
        keep[np.asarray(inliers)] = False
        rest = rest[keep]
    return None


def cluster(xyz: np.ndarray, cfg: LidarConfig) -> np.ndarray:
    """DBSCAN labels per point (-1 = noise)."""
    from polyhead.open3d_loader import open3d

    o3d = open3d()

    if len(xyz) == 0:
        return np.zeros(0, int)
    pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(xyz))
    return np.asarray(pcd.cluster_dbscan(cfg.cluster_eps, cfg.cluster_min_points, print_progress=False))


def fit_box(xyz: np.ndarray, ground: GroundPlane | None) -> Box3D:
    """Oriented box: the minimum-area rectangle of the bird's-eye footprint (cv2.minAreaRect) gives
    centre, length, width and yaw; the vertical extent runs from the ground (when known) to the top.
    A footprint fit is used rather than a full 3-D OBB because road users stand upright: a 3-D OBB
    tilts with sparse, one-sided returns, the footprint does not."""
    (cx, cy), (a, b), _ = cv2.minAreaRect(xyz[:, :2].astype(np.float32))
    corners = cv2.boxPoints(((cx, cy), (a, b), _))
    e1, e2 = corners[1] - corners[0], corners[2] - corners[1]
    long_edge = e1 if np.linalg.norm(e1) >= np.linalg.norm(e2) else e2
    yaw = math.atan2(float(long_edge[1]), float(long_edge[0]))
    if yaw <= -math.pi / 2:
        yaw += math.pi
    elif yaw > math.pi / 2:
        yaw -= math.pi
    top = float(xyz[:, 2].max())
    bottom = (
        float(ground.height_at(np.array([cx]), np.array([cy]))[0]) if ground is not None else float(xyz[:, 2].min())
    )
    bottom = min(bottom, float(xyz[:, 2].min()))
    length, width = max(a, b), min(a, b)
    return Box3D(np.array([cx, cy, (top + bottom) / 2]), np.array([length, width, top - bottom]), yaw, len(xyz))


def classify_size(box: Box3D) -> str | None:
    """A road-user guess from size, or ``None`` for implausible boxes (walls, trees, specks)."""
    l, w, h = box.size
    if h < 0.5 or h > 4.5 or l > 18 or w > 4.0 or l < 0.2:
        return None
    if 2.5 <= l <= 6.5 and 1.2 <= w <= 2.8 and 0.9 <= h <= 2.6:
        return "car"
    if l <= 1.3 and w <= 1.3 and 0.9 <= h <= 2.2:
        return "pedestrian"
    if 1.2 < l <= 2.6 and w <= 1.3 and 0.9 <= h <= 2.2:
        return "cyclist"
    if l > 6.5 and h > 2.0:
        return "truck"
    return "obstacle"
