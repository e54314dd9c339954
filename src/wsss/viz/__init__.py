"""Pictures: CAM heatmaps, label-map overlays in the VOC palette, image grids."""

from wsss.viz.grid import make_grid, save_png
from wsss.viz.overlay import cam_heatmap, overlay_cam, overlay_labels

__all__ = ["cam_heatmap", "make_grid", "overlay_cam", "overlay_labels", "save_png"]
