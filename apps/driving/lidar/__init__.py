"""LiDAR point clouds: read scans, find the ground (the point-cloud drivable area), cluster obstacles,
fit oriented 3D boxes, draw a bird's-eye view, project into a KITTI camera. Geometry with open3d,
imported lazily. Frame convention: LiDAR coordinates, x forward, y left, z up, metres; a box's yaw is
the rotation of its length axis about z, counter-clockwise from x, in (-pi/2, pi/2]."""
