"""Driving: traffic objects + drivable area + lane lines in one network; LiDAR point clouds."""
