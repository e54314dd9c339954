"""Files on disk: label PNGs in the VOC palette, CAM files, run directories, atomic writes."""

from wsss.io.atomic import atomic_path, atomic_write_bytes, atomic_write_text
from wsss.io.cams import CamFile, read_cams, write_cams
from wsss.io.images import read_image, read_label_png
from wsss.io.palette import VOC_PALETTE, write_label_png

__all__ = [
    "VOC_PALETTE",
    "CamFile",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "read_cams",
    "read_image",
    "read_label_png",
    "write_cams",
    "write_label_png",
]
