"""The synthetic VOC benchmark: procedurally drawn images that pose the WSSS problem on a CPU.

Each class is a body shared in shape, texture and colour with another class plus a small
discriminative part; scenes and clutter share the same colours. See ``docs/synthetic.md``.
"""

from wsss.synth.design import CLASS_DESIGNS, SYNTH_CLASSES, ClassDesign
from wsss.synth.generate import generate_benchmark, make_grid_figure, render_sample
from wsss.synth.render import RenderedImage, render_image

__all__ = [
    "CLASS_DESIGNS",
    "SYNTH_CLASSES",
    "ClassDesign",
    "RenderedImage",
    "generate_benchmark",
    "make_grid_figure",
    "render_image",
    "render_sample",
]
