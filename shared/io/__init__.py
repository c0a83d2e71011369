"""Readers (image, folder, glob, video, camera) and atomic writers (images, video, JSON, clouds, meshes)."""

from polyhead.io.readers import (
    IMAGE_SUFFIXES,
    VIDEO_SUFFIXES,
    Frame,
    SourceItem,
    VideoReader,
    iter_frames,
    iter_item,
    read_image,
    resolve_source,
    to_rgb8,
)
from polyhead.io.writers import (
    VideoWriter,
    atomic_path,
    write_bytes,
    write_image,
    write_json,
    write_mesh,
    write_point_cloud,
)

__all__ = [
    "IMAGE_SUFFIXES",
    "VIDEO_SUFFIXES",
    "Frame",
    "SourceItem",
    "VideoReader",
    "VideoWriter",
    "atomic_path",
    "iter_frames",
    "iter_item",
    "read_image",
    "resolve_source",
    "to_rgb8",
    "write_bytes",
    "write_image",
    "write_json",
    "write_mesh",
    "write_point_cloud",
]
