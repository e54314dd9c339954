"""Drawing one version-3 image: a scene, clutter, 1-3 textured objects with parts, noise, void band.

Scenes, body shapes, part glyphs, the void band and the imaging noise are version 2's
(:mod:`wsss.synth.render`); version 3 adds a texture family per class (:func:`texture3`), larger
objects and clutter, and higher-contrast body textures (:mod:`wsss.synth.design3`). All randomness
comes from the one ``np.random.Generator`` passed to :func:`render_image3`.
"""

from __future__ import annotations

import numpy as np

import wsss.synth.design3 as d3
from wsss.io.palette import IGNORE_INDEX
from wsss.synth.design import BODY_FAMILIES, PALETTE, SCENES
from wsss.synth.render import (
    BODIES,
    PARTS,
    Field,
    Grid,
    Mask,
    Pose,
    RenderedImage,
    _colour,
    _describe,
    _finish,
    _mix,
    _occludes_too_much,
    _pick_colour,
    _shade,
    object_frame,
    render_scene,
    smooth_noise,
    texture,
    void_band,
)

_PLACEMENT_TRIES = 8
_PALETTE_NAMES = tuple(PALETTE)
_SHARED = ("stripes", "checker", "dots")  # drawn exactly as version 2 draws them


def _frac(x: Field) -> Field:
    return x - np.floor(x)


def texture3(kind: str, u: Field, v: Field, half_len: float, rng: np.random.Generator) -> Field:
    """A version-3 texture weight field in [0, 1], laid out in the object frame.

    Args:
        kind: One of :data:`~wsss.synth.design3.TEXTURES_V3`.
        u, v: Object coordinates (units of half the object length).
        half_len: Half the object length in pixels (keeps periods >= ~3 px).
        rng: Source of the texture's random period, angle and phase.

    Shapes:
        u, v: ``(S, S)``. Returns ``(S, S)`` float32.
    """
    if kind in _SHARED:
        return texture(kind, u, v, half_len, rng)
    period = max(rng.uniform(0.3, 0.5), 4.0 / half_len)  # in object units
    angle = rng.uniform(0, np.pi)
    along = (u * np.cos(angle) + v * np.sin(angle)) / period
    across = (-u * np.sin(angle) + v * np.cos(angle)) / period
    phase = rng.uniform(0, 1)
    if kind == "waves":  # wavy bands
        weight = np.sin(2 * np.pi * (along + 0.3 * np.sin(np.pi * across) + phase)) > 0
    elif kind == "hatch":  # a grid of thin lines
        weight = (_frac(along + phase) < 0.3) | (_frac(across + phase) < 0.3)
    elif kind == "zigzag":  # chevron bands
        weight = _frac(along + 1.2 * np.abs(_frac(across) - 0.5) + phase) < 0.5
    elif kind == "spots":  # irregular blobs (thresholded value noise)
        cells = u.shape[0] / (half_len * period * 1.2)
        weight = smooth_noise(rng, u.shape[0], cells, cells) > 0.6
    elif kind == "rings":  # concentric rings around the object's centre
        weight = _frac(np.hypot(u, v) / period + phase) < 0.5
    elif kind == "spokes":  # sectors around the object's centre
        spokes = int(rng.integers(5, 9))
        weight = np.sin(spokes * np.arctan2(v, u) + 2 * np.pi * phase) > 0
    elif kind == "bricks":  # staggered rows of bricks
        row = np.floor(across + phase)
        weight = (_frac(across + phase) < 0.25) | (_frac(0.5 * along + 0.5 * row) < 0.12)
    else:
        raise ValueError(f"unknown texture {kind!r}; expected one of {d3.TEXTURES_V3}")
    return weight.astype(np.float32)


def _paint3(
    image: np.ndarray,
    mask: Mask,
    kind: str,
    frame: tuple[Field, Field, float],
    colours: tuple[np.ndarray, np.ndarray],
    rng: np.random.Generator,
) -> None:
    u, v, half_len = frame
    weight = texture3(kind, u, v, half_len, rng)
    image[mask] = _mix(colours[0], colours[1], weight)[mask]


def _texture_colours(rng: np.random.Generator, first: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return first, _shade(rng, first, *d3.TEXTURE_CONTRAST_V3)


def draw_clutter3(image: np.ndarray, grid: Grid, rng: np.random.Generator) -> int:
    """Paint small distractors (any body shape and texture, no part) in place; returns how many."""
    lo, hi = d3.CLUTTER_COUNT_V3
    count = int(rng.integers(lo, hi + 1))
    for _ in range(count):
        pose = Pose(
            cx=rng.uniform(0, grid.size),
            cy=rng.uniform(0, grid.size),
            half_len=0.5 * rng.uniform(*d3.CLUTTER_SIZE_RANGE_V3) * grid.size,
            aspect=rng.uniform(0.4, 1.0),
            theta=rng.uniform(0, 2 * np.pi),
            flip=1.0,
        )
        u, v = object_frame(grid, pose)
        mask = BODIES[str(rng.choice(BODY_FAMILIES))](u, v, pose.aspect, rng)
        colours = _texture_colours(rng, _colour(rng, str(rng.choice(_PALETTE_NAMES))))
        kind = str(rng.choice(d3.TEXTURES_V3))
        _paint3(image, mask, kind, (u, v, pose.half_len), colours, rng)
    return count


def choose_classes3(rng: np.random.Generator) -> list[int]:
    """Class indices of an image's 1-3 objects: the first uniform, each further one a companion
    of the first with probability :data:`~wsss.synth.design3.COMPANION_PROB_V3`, else uniform."""
    designs = d3.CLASS_DESIGNS_V3
    names = [d.name for d in designs]
    count = 1 + int(rng.choice(len(d3.OBJECT_COUNT_PROBS_V3), p=d3.OBJECT_COUNT_PROBS_V3))
    chosen = [int(rng.integers(len(designs)))]
    companions = designs[chosen[0]].companions
    for _ in range(count - 1):
        if companions and rng.random() < d3.COMPANION_PROB_V3:
            chosen.append(names.index(str(rng.choice(companions))))
        else:
            chosen.append(int(rng.integers(len(designs))))
    return chosen


def choose_scene3(first_class: int, rng: np.random.Generator) -> str:
    """The preferred scene of ``first_class`` with probability
    :data:`~wsss.synth.design3.PREFERRED_SCENE_PROB_V3`, else a uniform scene."""
    if rng.random() < d3.PREFERRED_SCENE_PROB_V3:
        return d3.CLASS_DESIGNS_V3[first_class].scene
    return str(rng.choice(SCENES))


def choose_texture(
    design: d3.ClassDesign3, rng: np.random.Generator, own_prob: float = d3.OWN_TEXTURE_PROB
) -> str:
    """The class's own texture with probability ``own_prob``
    (:data:`~wsss.synth.design3.OWN_TEXTURE_PROB` by default), else one of the other classes'
    textures (uniform)."""
    if rng.random() < own_prob:
        return design.texture
    others = [t for t in d3.TEXTURES_V3 if t != design.texture]
    return str(rng.choice(others))


def sample_pose3(design: d3.ClassDesign3, size: int, rng: np.random.Generator) -> Pose:
    """A random position, length, aspect, rotation (±30°) and mirror."""
    half = 0.5 * rng.uniform(*d3.OBJECT_SIZE_RANGE_V3) * size
    margin = 0.5 * half
    return Pose(
        cx=rng.uniform(margin, size - margin),
        cy=rng.uniform(margin, size - margin),
        half_len=half,
        aspect=rng.uniform(*design.aspect),
        theta=np.deg2rad(rng.uniform(-30.0, 30.0)),
        flip=float(rng.choice([-1.0, 1.0])),
    )


def draw_object3(
    image: np.ndarray,
    instances: np.ndarray,
    areas: list[int],
    design: d3.ClassDesign3,
    grid: Grid,
    rng: np.random.Generator,
    own_texture_prob: float = d3.OWN_TEXTURE_PROB,
) -> tuple[Mask, Mask, str] | None:
    """Place and paint one object on top of ``image``; None if no placement kept the earlier
    objects at least half visible (nothing is drawn then).

    Returns:
        The object's mask and part mask (``(S, S)`` bool) and the texture it wears.
    """
    min_pixels = max(12, grid.size * grid.size // 200)
    for _ in range(_PLACEMENT_TRIES):
        pose = sample_pose3(design, grid.size, rng)
        u, v = object_frame(grid, pose)
        part = PARTS[design.part](u, v, pose.aspect)
        mask = BODIES[design.shape](u, v, pose.aspect, rng) | part
        if mask.sum() >= min_pixels and not _occludes_too_much(instances, mask, areas):
            break
    else:
        return None
    behind = image[mask].mean(axis=0)
    part_colour = _colour(rng, design.part_colour)
    colours = _texture_colours(rng, _pick_colour(rng, [behind, part_colour], 90.0))
    kind = choose_texture(design, rng, own_texture_prob)
    _paint3(image, mask, kind, (u, v, pose.half_len), colours, rng)
    image[part] = part_colour * (0.92 + 0.16 * rng.random((int(part.sum()), 1), dtype=np.float32))
    return mask, part, kind


def render_image3(
    rng: np.random.Generator, size: int = 128, own_texture_prob: float = d3.OWN_TEXTURE_PROB
) -> RenderedImage:
    """Render one version-3 image with its class and instance masks.

    Args:
        rng: The image's own generator; the result depends on nothing else.
        size: Side of the square image in pixels (>= 32).
        own_texture_prob: Probability that a body wears its own class's texture.

    Returns:
        The image, masks (with the void band) and what was drawn (``textures`` gives the texture
        of each object, ``clutter`` the number of distractors).
    """
    if size < 32:
        raise ValueError(f"size must be >= 32 pixels, got {size}")
    grid = Grid.square(size)
    classes = choose_classes3(rng)
    scene = choose_scene3(classes[0], rng)
    image = render_scene(scene, grid, rng)
    clutter = draw_clutter3(image, grid, rng)
    instances = np.zeros((size, size), dtype=np.uint8)
    drawn: list[tuple[int, Mask, Mask]] = []
    textures = []
    for cls in classes:
        areas = [int(m.sum()) for _, m, _ in drawn]
        design = d3.CLASS_DESIGNS_V3[cls]
        result = draw_object3(image, instances, areas, design, grid, rng, own_texture_prob)
        if result is not None:
            drawn.append((cls + 1, result[0], result[1]))
            textures.append(result[2])
            instances[result[0]] = len(drawn)
    objects, parts = _describe(drawn, instances)
    class_of = np.array([0] + [cls for cls, _, _ in drawn], dtype=np.uint8)
    band = void_band(instances)
    label = np.where(band, IGNORE_INDEX, class_of[instances]).astype(np.uint8)
    instances = np.where(band, IGNORE_INDEX, instances).astype(np.uint8)
    return RenderedImage(
        _finish(image, rng), label, instances, scene, objects, parts & ~band,
        textures=tuple(textures), clutter=clutter,
    )  # fmt: skip
