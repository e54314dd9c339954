"""Drawing one synthetic image: a scene, clutter, 1-3 objects with parts, noise and a void band.

Everything is computed at the target size on numpy coordinate grids (no per-pixel Python loops,
no anti-aliasing; a mild blur softens the edges). All randomness comes from the one
``np.random.Generator`` passed to :func:`render_image`, so an image depends only on its seed.

Objects are drawn in their own frame ``(u, v)``: ``u`` runs along the body from back (-1) to
front (+1), ``v`` across it from top (-aspect) to bottom (+aspect), both in units of half the
body length. Parts are fixed glyphs in this frame, which is what makes them class-specific.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter

from wsss.io.palette import IGNORE_INDEX
from wsss.synth.design import (
    BODY_FAMILIES,
    CLASS_DESIGNS,
    COMPANION_PROB,
    MAX_ROTATION_DEG,
    OBJECT_COUNT_PROBS,
    OBJECT_SIZE_RANGE,
    PALETTE,
    PART_COLOURS,
    PREFERRED_SCENE_PROB,
    SCENE_COLOURS,
    SCENES,
    TEXTURES,
    ClassDesign,
)

Mask = np.ndarray  # (H, W) bool
Field = np.ndarray  # (H, W) float32
Point = tuple[float, float]  # (u, v) in an object frame

#: An object must keep this fraction of its pixels visible after later objects are drawn.
MIN_VISIBLE_FRACTION = 0.5
_PLACEMENT_TRIES = 6
_PALETTE_NAMES = tuple(PALETTE)


@dataclass(frozen=True)
class Grid:
    """Pixel-centre coordinates of a square image.

    Shapes:
        x, y: ``(S, S)`` float32, in pixels.
    """

    x: np.ndarray
    y: np.ndarray
    size: int

    @classmethod
    def square(cls, size: int) -> Grid:
        """The grid of a ``size`` x ``size`` image."""
        axis = np.arange(size, dtype=np.float32) + 0.5
        y, x = np.meshgrid(axis, axis, indexing="ij")
        return cls(x=x, y=y, size=size)


@dataclass(frozen=True)
class Pose:
    """Where an object lies: centre and half-length in pixels, aspect, rotation (rad), mirror."""

    cx: float
    cy: float
    half_len: float
    aspect: float
    theta: float
    flip: float


@dataclass(frozen=True)
class ObjectInfo:
    """What was drawn for one object (pixel counts before the void band).

    Args:
        class_id: Label id (1..K).
        instance_id: Drawing order, from 1; later objects lie on top.
        area: Pixels of body and part inside the image, before later objects occlude it.
        part_area: Pixels of the part among ``area``.
        visible: Pixels of the object still visible in the final image.
        part_visible: Pixels of the part still visible.
    """

    class_id: int
    instance_id: int
    area: int
    part_area: int
    visible: int
    part_visible: int


@dataclass
class RenderedImage:
    """One rendered sample.

    Shapes:
        image: ``(S, S, 3)`` uint8 RGB.
        label: ``(S, S)`` uint8 class ids, 0 = background, 255 = void band.
        instances: ``(S, S)`` uint8 instance ids (0 = background), 255 = void band.
        parts: ``(S, S)`` bool, the visible pixels of the objects' discriminative parts
            (version 2: not written to disk; version 3: ``SegmentationPart``).

    Attributes:
        scene: The scene type.
        objects: What was drawn, in drawing order.
        textures: Version 3: the texture family each object wears (empty for version 2).
        clutter: Version 3: the number of distractor shapes (None for version 2).
    """

    image: np.ndarray
    label: np.ndarray
    instances: np.ndarray
    scene: str
    objects: list[ObjectInfo]
    parts: np.ndarray
    textures: tuple[str, ...] = ()
    clutter: int | None = None


# -- small helpers ------------------------------------------------------------------------------
def _mix(a: np.ndarray, b: np.ndarray, t: Field) -> np.ndarray:
    """Blend colours (or images) ``a`` and ``b`` by the weight field ``t`` in [0, 1]."""
    t = t[..., None]
    return a * (1.0 - t) + b * t


def _colour(rng: np.random.Generator, name: str, jitter: float = 18.0) -> np.ndarray:
    """A palette (or part) colour with a random per-channel jitter, float32 RGB."""
    base = np.asarray(PALETTE[name] if name in PALETTE else PART_COLOURS[name], dtype=np.float32)
    return np.clip(base + rng.uniform(-jitter, jitter, 3), 0, 255).astype(np.float32)


def _shade(rng: np.random.Generator, colour: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """A lighter or darker version of ``colour`` (a texture's second colour)."""
    step = rng.uniform(lo, hi) * rng.choice([-1.0, 1.0])
    if np.mean(colour) + step < 20 or np.mean(colour) + step > 235:
        step = -step
    return np.clip(colour + step, 0, 255).astype(np.float32)


def smooth_noise(rng: np.random.Generator, size: int, cells_y: float, cells_x: float) -> Field:
    """Value noise: a ``cells_y`` x ``cells_x`` random lattice interpolated smoothly to the image.

    Returns:
        ``(size, size)`` float32 in [0, 1].
    """
    ny, nx = max(1, round(cells_y)), max(1, round(cells_x))
    lattice = rng.random((ny + 1, nx + 1)).astype(np.float32)

    def weights(n: int) -> tuple[np.ndarray, np.ndarray]:
        pos = (np.arange(size, dtype=np.float32) + 0.5) * (n / size)
        idx = np.minimum(pos.astype(np.int64), n - 1)
        frac = pos - idx
        return idx, frac * frac * (3.0 - 2.0 * frac)

    iy, fy = weights(ny)
    ix, fx = weights(nx)
    rows = lattice[iy] * (1.0 - fy)[:, None] + lattice[iy + 1] * fy[:, None]
    return rows[:, ix] * (1.0 - fx) + rows[:, ix + 1] * fx


def fractal_noise(rng: np.random.Generator, size: int, cells: float, octaves: int = 3) -> Field:
    """Sum of value-noise octaves (each twice as fine, half as strong), rescaled to [0, 1]."""
    total = np.zeros((size, size), dtype=np.float32)
    weight = 0.0
    for k in range(octaves):
        amp = 0.5**k
        total += amp * smooth_noise(rng, size, cells * 2**k, cells * 2**k)
        weight += amp
    return total / weight


def _rotated(grid: Grid, cx: float, cy: float, theta: float) -> tuple[Field, Field]:
    """Coordinates (pixels) along and across a direction ``theta`` through ``(cx, cy)``."""
    dx, dy = grid.x - cx, grid.y - cy
    c, s = np.cos(theta), np.sin(theta)
    return c * dx + s * dy, -s * dx + c * dy


def object_frame(grid: Grid, pose: Pose) -> tuple[Field, Field]:
    """The object's own coordinates ``(u, v)`` (units of half its length) at every pixel."""
    along, across = _rotated(grid, pose.cx, pose.cy, pose.theta)
    return along * (pose.flip / pose.half_len), across / pose.half_len


def _in_triangle(u: Field, v: Field, p0: Point, p1: Point, p2: Point) -> Mask:
    def edge(p: Point, q: Point) -> Field:
        return (q[0] - p[0]) * (v - p[1]) - (q[1] - p[1]) * (u - p[0])

    e0, e1, e2 = edge(p0, p1), edge(p1, p2), edge(p2, p0)
    return ((e0 >= 0) & (e1 >= 0) & (e2 >= 0)) | ((e0 <= 0) & (e1 <= 0) & (e2 <= 0))


def _near_segment(u: Field, v: Field, p: Point, q: Point, width: float) -> Mask:
    du, dv = q[0] - p[0], q[1] - p[1]
    t = np.clip(((u - p[0]) * du + (v - p[1]) * dv) / (du * du + dv * dv), 0.0, 1.0)
    return (u - p[0] - t * du) ** 2 + (v - p[1] - t * dv) ** 2 <= width * width


def _polar(u: Field, v: Field, a: float) -> tuple[Field, Field]:
    w = v / a
    return np.hypot(u, w), np.arctan2(w, u)


# -- bodies -------------------------------------------------------------------------------------
def _ellipse(u: Field, v: Field, a: float, rng: np.random.Generator) -> Mask:
    return u * u + (v / a) ** 2 <= 1.0


def _capsule(u: Field, v: Field, a: float, rng: np.random.Generator) -> Mask:
    du = np.maximum(np.abs(u) - (1.0 - a), 0.0)
    return du * du + v * v <= a * a


def _rounded_rect(u: Field, v: Field, a: float, rng: np.random.Generator) -> Mask:
    r = 0.3 * a
    qx, qy = np.abs(u) - (1.0 - r), np.abs(v) - (a - r)
    outside = np.hypot(np.maximum(qx, 0.0), np.maximum(qy, 0.0))
    return outside + np.minimum(np.maximum(qx, qy), 0.0) <= r


def _blob(u: Field, v: Field, a: float, rng: np.random.Generator) -> Mask:
    rho, phi = _polar(u, v, a)
    amps, phases = rng.uniform(0.04, 0.11, 3), rng.uniform(0, 2 * np.pi, 3)
    radius = 1.0 + sum(amps[k] * np.cos((k + 2) * phi + phases[k]) for k in range(3))
    return rho <= radius


def _star(u: Field, v: Field, a: float, rng: np.random.Generator) -> Mask:
    rho, phi = _polar(u, v, a)
    points, inner, phase = int(rng.integers(5, 8)), rng.uniform(0.5, 0.62), rng.uniform(0, np.pi)
    return rho <= inner + (1.0 - inner) * np.abs(np.cos(0.5 * points * (phi + phase))) ** 1.2


def _ring(u: Field, v: Field, a: float, rng: np.random.Generator) -> Mask:
    rho, _ = _polar(u, v, a)
    return (rho <= 1.0) & (rho >= rng.uniform(0.45, 0.65))


def _crescent(u: Field, v: Field, a: float, rng: np.random.Generator) -> Mask:
    shift, radius = rng.uniform(0.3, 0.55), rng.uniform(0.75, 0.9)
    return (u * u + (v / a) ** 2 <= 1.0) & ((u - shift) ** 2 + (v / a) ** 2 > radius * radius)


def _triangle(u: Field, v: Field, a: float, rng: np.random.Generator) -> Mask:
    apex = rng.uniform(-0.6, 0.6) * a
    return _in_triangle(u, v, (1.0, apex), (-1.0, -a), (-1.0, a))


BodyFn = Callable[[Field, Field, float, np.random.Generator], Mask]
BODIES: dict[str, BodyFn] = {
    "ellipse": _ellipse,
    "capsule": _capsule,
    "rounded_rect": _rounded_rect,
    "blob": _blob,
    "star": _star,
    "ring": _ring,
    "crescent": _crescent,
    "triangle": _triangle,
}


# -- discriminative parts (fixed glyphs in the object frame) ------------------------------------
def _bullseye(u: Field, v: Field, a: float) -> Mask:
    rho = np.hypot(u, v)
    return (rho <= 0.27) & (rho >= 0.15)


def _beak(u: Field, v: Field, a: float) -> Mask:
    return _in_triangle(u, v, (0.8, -0.34 * a), (0.8, 0.34 * a), (1.4, 0.0))


def _sail(u: Field, v: Field, a: float) -> Mask:
    return _in_triangle(u, v, (-0.3, -0.6 * a), (0.22, -0.6 * a), (-0.12, -a - 0.45))


def _bar(u: Field, v: Field, a: float) -> Mask:
    return (np.abs(u - 0.68) <= 0.1) & (np.abs(v) <= 0.75 * a)


def _cross(u: Field, v: Field, a: float) -> Mask:
    du, dv = np.abs(u - (0.95 - 0.5 * a)), np.abs(v)
    arm, half_width = 0.5 * a, 0.14 * a
    return ((du <= arm) & (dv <= half_width)) | ((du <= half_width) & (dv <= arm))


def _wheels(u: Field, v: Field, a: float) -> Mask:
    r2 = (0.36 * a) ** 2
    return ((u - 0.52) ** 2 + (v - 0.95 * a) ** 2 <= r2) | (
        (u + 0.52) ** 2 + (v - 0.95 * a) ** 2 <= r2
    )


def _ears(u: Field, v: Field, a: float) -> Mask:
    masks = []
    for centre in (0.3, 0.62):
        top = -a * np.sqrt(1.0 - centre * centre) + 0.12 * a
        masks.append(
            _in_triangle(u, v, (centre - 0.16, top), (centre + 0.16, top), (centre, top - 0.65 * a))
        )
    return masks[0] | masks[1]


def _horns(u: Field, v: Field, a: float) -> Mask:
    left = _near_segment(u, v, (0.35, -0.6 * a), (0.25, -a - 0.3), 0.06)
    return left | _near_segment(u, v, (0.62, -0.6 * a), (0.72, -a - 0.3), 0.06)


def _head(u: Field, v: Field, a: float) -> Mask:
    return np.abs(u - 0.98) / 0.3 + np.abs(v) / 0.24 <= 1.0


def _pot(u: Field, v: Field, a: float) -> Mask:
    top, bottom = 0.68, 1.1
    t = (v - top) / (bottom - top)
    return (t >= 0) & (t <= 1) & (np.abs(u) <= 0.26 - 0.08 * t)


PartFn = Callable[[Field, Field, float], Mask]
PARTS: dict[str, PartFn] = {
    "bullseye": _bullseye,
    "beak": _beak,
    "sail": _sail,
    "bar": _bar,
    "cross": _cross,
    "wheels": _wheels,
    "ears": _ears,
    "horns": _horns,
    "head": _head,
    "pot": _pot,
}


# -- textures -----------------------------------------------------------------------------------
def texture(kind: str, u: Field, v: Field, half_len: float, rng: np.random.Generator) -> Field:
    """A texture weight field in [0, 1], laid out in the object frame.

    Args:
        kind: One of :data:`~wsss.synth.design.TEXTURES`.
        u, v: Object coordinates (units of half the object length).
        half_len: Half the object length in pixels (keeps periods >= ~3 px).
        rng: Source of the texture's random period, angle and phase.
    """
    period = max(rng.uniform(0.3, 0.55), 3.0 / half_len)  # in object units
    angle = rng.uniform(0, np.pi)
    along = u * np.cos(angle) + v * np.sin(angle)
    if kind == "stripes":
        return (np.sin(2 * np.pi * along / period + rng.uniform(0, 6.3)) > 0).astype(np.float32)
    if kind == "checker":
        across = -u * np.sin(angle) + v * np.cos(angle)
        cells = np.floor(along / period) + np.floor(across / period)
        return (cells % 2).astype(np.float32)
    if kind == "dots":
        fu, fv = (u / period) % 1.0 - 0.5, (v / period) % 1.0 - 0.5
        return (fu * fu + fv * fv <= 0.09).astype(np.float32)
    if kind == "noise":
        cells = u.shape[0] / (half_len * period * 1.5)
        return smooth_noise(rng, u.shape[0], cells, cells)
    if kind == "gradient":
        return np.clip(0.5 + 0.5 * along, 0.0, 1.0).astype(np.float32)
    raise ValueError(f"unknown texture {kind!r}; expected one of {TEXTURES}")


def _paint(
    image: np.ndarray,
    mask: Mask,
    kind: str,
    frame: tuple[Field, Field, float],
    colours: tuple[np.ndarray, np.ndarray],
    rng: np.random.Generator,
) -> None:
    """Paint ``mask`` of ``image`` in place with a two-colour texture."""
    u, v, half_len = frame
    weight = texture(kind, u, v, half_len, rng)
    image[mask] = _mix(colours[0], colours[1], weight)[mask]


# -- scenes -------------------------------------------------------------------------------------
def _sky(rng: np.random.Generator, grid: Grid) -> np.ndarray:
    top = _colour(rng, str(rng.choice(["skyblue", "blue", "cyan"])))
    low = 0.5 * (top + _colour(rng, "white"))
    image = _mix(top, low, grid.y / grid.size)
    clouds = fractal_noise(rng, grid.size, rng.uniform(2.5, 4.5))
    cover = np.clip((clouds - rng.uniform(0.45, 0.65)) * 4.0, 0.0, 0.9)
    return _mix(image, _colour(rng, str(rng.choice(["white", "grey"]))), cover)


def _water(rng: np.random.Generator, grid: Grid) -> np.ndarray:
    size, horizon = grid.size, rng.uniform(0.08, 0.45) * grid.size
    depth = np.maximum(grid.y - horizon, 0.0) / size
    period = size * rng.uniform(0.02, 0.04) * (0.5 + 2.0 * depth)
    wobble = 0.25 * np.sin(2 * np.pi * grid.x / (size * rng.uniform(0.2, 0.5)) + rng.uniform(0, 6))
    ripple = np.sin(2 * np.pi * (grid.y / period + wobble))
    base = _colour(rng, str(rng.choice(SCENE_COLOURS["water"][:3])))
    water = base * (0.88 + 0.1 * ripple + 0.15 * fractal_noise(rng, size, 3))[..., None]
    water = _mix(water, _colour(rng, "white"), 0.5 * (ripple > 0.93))
    return np.where((grid.y < horizon)[..., None], _sky(rng, grid), water)


def _grass(rng: np.random.Generator, grid: Grid) -> np.ndarray:
    size = grid.size
    ground = _mix(
        _colour(rng, str(rng.choice(["green", "olive"]))),
        _colour(rng, str(rng.choice(["green", "olive", "brown"]))),
        fractal_noise(rng, size, rng.uniform(2, 4)),
    )
    blades = smooth_noise(rng, size, size / 6.0, size / 1.5)
    ground *= (0.8 + 0.35 * blades)[..., None]
    if rng.random() < 0.4:
        horizon = rng.uniform(0.1, 0.35) * size
        return np.where((grid.y < horizon)[..., None], _sky(rng, grid), ground)
    return ground


def _road(rng: np.random.Generator, grid: Grid) -> np.ndarray:
    size = grid.size
    side = _colour(rng, str(rng.choice(["green", "olive", "beige", "grey"])))
    image = side * (0.85 + 0.3 * fractal_noise(rng, size, 4))[..., None]
    along, across = _rotated(grid, size / 2, rng.uniform(0.3, 0.7) * size, rng.uniform(-0.45, 0.45))
    half_width = rng.uniform(0.2, 0.38) * size
    asphalt = _colour(rng, str(rng.choice(["grey", "dark"])), 12)
    asphalt = asphalt * (0.9 + 0.2 * smooth_noise(rng, size, size / 3, size / 3))[..., None]
    image = np.where((np.abs(across) <= half_width)[..., None], asphalt, image)
    line_w, dash = max(1.0, size / 90), size * rng.uniform(0.08, 0.14)
    lines = (np.abs(across) <= line_w) & ((along / dash) % 1.0 < 0.5)
    lines |= np.abs(np.abs(across) - half_width + 2 * line_w) <= line_w * 0.7
    return np.where(lines[..., None], _colour(rng, str(rng.choice(["white", "yellow"]))), image)


def _rails(rng: np.random.Generator, grid: Grid) -> np.ndarray:
    size = grid.size
    gravel = _mix(
        _colour(rng, str(rng.choice(["brown", "grey"]))),
        _colour(rng, str(rng.choice(["beige", "dark", "grey"]))),
        fractal_noise(rng, size, 4),
    )
    gravel *= (0.8 + 0.4 * rng.random((size, size), dtype=np.float32))[..., None]
    along, across = _rotated(grid, size / 2, rng.uniform(0.3, 0.7) * size, rng.uniform(-0.5, 0.5))
    gauge, spacing = rng.uniform(0.14, 0.22) * size, rng.uniform(0.06, 0.09) * size
    sleepers = (np.abs(across) <= 0.75 * gauge) & ((along / spacing) % 1.0 < 0.4)
    image = np.where(sleepers[..., None], _colour(rng, str(rng.choice(["brown", "dark"]))), gravel)
    rails = np.abs(np.abs(across) - 0.5 * gauge) <= max(0.8, size / 110)
    return np.where(rails[..., None], _colour(rng, str(rng.choice(["grey", "white"]))), image)


def _indoor(rng: np.random.Generator, grid: Grid) -> np.ndarray:
    size, names = grid.size, SCENE_COLOURS["indoor"]
    wall = _colour(rng, str(rng.choice(names)))
    stripes = np.sin(2 * np.pi * grid.x / (size * rng.uniform(0.04, 0.1))) > 0
    image = wall * (1.0 + rng.uniform(0.04, 0.1) * stripes)[..., None]
    if rng.random() < 0.6:  # a window or picture on the wall
        x0, y0 = rng.uniform(0, 0.7) * size, rng.uniform(0, 0.3) * size
        w, h = rng.uniform(0.15, 0.35) * size, rng.uniform(0.15, 0.3) * size
        frame = (grid.x >= x0) & (grid.x < x0 + w) & (grid.y >= y0) & (grid.y < y0 + h)
        image[frame] = _colour(rng, str(rng.choice(["skyblue", "white", "dark", "teal"])))
    floor_y, plank = rng.uniform(0.5, 0.8) * size, rng.uniform(0.05, 0.09) * size
    plank_id = np.floor((grid.y - floor_y) / plank).astype(np.int64)
    shades = 0.85 + 0.25 * rng.random(size + 2, dtype=np.float32)
    floor = _colour(rng, str(rng.choice(names)))
    floor = floor * shades[np.clip(plank_id, 0, size + 1)][..., None]
    return np.where((grid.y >= floor_y)[..., None], floor, image)


SCENE_PAINTERS: dict[str, Callable[[np.random.Generator, Grid], np.ndarray]] = {
    "sky": _sky,
    "water": _water,
    "grass": _grass,
    "road": _road,
    "rails": _rails,
    "indoor": _indoor,
}


def render_scene(scene: str, grid: Grid, rng: np.random.Generator) -> np.ndarray:
    """A background of type ``scene``.

    Returns:
        ``(S, S, 3)`` float32 RGB in about [0, 255].
    """
    if scene not in SCENE_PAINTERS:
        raise ValueError(f"unknown scene {scene!r}; expected one of {SCENES}")
    return SCENE_PAINTERS[scene](rng, grid).astype(np.float32)


def draw_clutter(image: np.ndarray, grid: Grid, rng: np.random.Generator) -> None:
    """Paint 1-3 small distractors (any body shape, no part) on ``image`` in place."""
    for _ in range(int(rng.integers(1, 4))):
        pose = Pose(
            cx=rng.uniform(0, grid.size),
            cy=rng.uniform(0, grid.size),
            half_len=0.5 * rng.uniform(0.06, 0.15) * grid.size,
            aspect=rng.uniform(0.4, 1.0),
            theta=rng.uniform(0, 2 * np.pi),
            flip=1.0,
        )
        u, v = object_frame(grid, pose)
        mask = BODIES[str(rng.choice(BODY_FAMILIES))](u, v, pose.aspect, rng)
        first = _colour(rng, str(rng.choice(_PALETTE_NAMES)))
        colours = (first, _shade(rng, first, 25, 60))
        _paint(image, mask, str(rng.choice(TEXTURES)), (u, v, pose.half_len), colours, rng)


# -- objects ------------------------------------------------------------------------------------
def choose_classes(rng: np.random.Generator) -> list[int]:
    """Class indices (0-based into ``CLASS_DESIGNS``) of an image's 1-3 objects, in drawing order.

    The first is uniform; each further one is a companion of the first with probability
    :data:`~wsss.synth.design.COMPANION_PROB`, else uniform (repeats allowed).
    """
    names = [d.name for d in CLASS_DESIGNS]
    count = 1 + int(rng.choice(len(OBJECT_COUNT_PROBS), p=OBJECT_COUNT_PROBS))
    chosen = [int(rng.integers(len(CLASS_DESIGNS)))]
    companions = CLASS_DESIGNS[chosen[0]].companions
    for _ in range(count - 1):
        if companions and rng.random() < COMPANION_PROB:
            chosen.append(names.index(str(rng.choice(companions))))
        else:
            chosen.append(int(rng.integers(len(CLASS_DESIGNS))))
    return chosen


def choose_scene(first_class: int, rng: np.random.Generator) -> str:
    """The preferred scene of ``first_class`` with probability 0.4, else a uniform scene."""
    if rng.random() < PREFERRED_SCENE_PROB:
        return CLASS_DESIGNS[first_class].scene
    return str(rng.choice(SCENES))


def sample_pose(design: ClassDesign, size: int, rng: np.random.Generator) -> Pose:
    """A random position, length (30-60 % of the side), aspect, rotation and mirror."""
    half = 0.5 * rng.uniform(*OBJECT_SIZE_RANGE) * size
    margin = 0.6 * half
    return Pose(
        cx=rng.uniform(margin, size - margin),
        cy=rng.uniform(margin, size - margin),
        half_len=half,
        aspect=rng.uniform(*design.body.aspect),
        theta=np.deg2rad(rng.uniform(-MAX_ROTATION_DEG, MAX_ROTATION_DEG)),
        flip=float(rng.choice([-1.0, 1.0])),
    )


def object_masks(
    design: ClassDesign, pose: Pose, grid: Grid, rng: np.random.Generator
) -> tuple[Mask, Mask, tuple[Field, Field, float]]:
    """The object's full mask (body and part), its part mask, and its frame ``(u, v, half_len)``."""
    u, v = object_frame(grid, pose)
    part = PARTS[design.part](u, v, pose.aspect)
    body = BODIES[design.body.family](u, v, pose.aspect, rng)
    return body | part, part, (u, v, pose.half_len)


def _pick_colour(
    rng: np.random.Generator, avoid: list[np.ndarray], min_dist: float, tries: int = 8
) -> np.ndarray:
    """A jittered palette colour at least ``min_dist`` (RGB) from all of ``avoid`` if possible."""
    best, best_dist = None, -1.0
    for _ in range(tries):
        colour = _colour(rng, str(rng.choice(_PALETTE_NAMES)))
        dist = min(float(np.linalg.norm(colour - a)) for a in avoid)
        if dist >= min_dist:
            return colour
        if dist > best_dist:
            best, best_dist = colour, dist
    assert best is not None
    return best


def _occludes_too_much(instances: np.ndarray, mask: Mask, areas: list[int]) -> bool:
    """Whether drawing ``mask`` on top would leave an earlier object under half visible."""
    n = len(areas) + 1
    visible = np.bincount(instances.ravel(), minlength=n)[1:n]
    lost = np.bincount(instances[mask], minlength=n)[1:n]
    return bool(np.any(visible - lost < MIN_VISIBLE_FRACTION * np.asarray(areas)))


def draw_object(
    image: np.ndarray,
    instances: np.ndarray,
    areas: list[int],
    design: ClassDesign,
    grid: Grid,
    rng: np.random.Generator,
) -> tuple[Mask, Mask] | None:
    """Place and paint one object on top of ``image``; None if no placement kept the earlier
    objects at least half visible (nothing is drawn then).

    Returns:
        The object's mask and part mask, both ``(S, S)`` bool.
    """
    min_pixels = max(12, grid.size * grid.size // 400)
    for _ in range(_PLACEMENT_TRIES):
        pose = sample_pose(design, grid.size, rng)
        mask, part, frame = object_masks(design, pose, grid, rng)
        if mask.sum() >= min_pixels and not _occludes_too_much(instances, mask, areas):
            break
    else:
        return None
    behind = image[mask].mean(axis=0)
    part_colour = _colour(rng, design.part_colour)
    first = _pick_colour(rng, [behind, part_colour], 90.0)
    colours = (first, _shade(rng, first, 25, 50))
    _paint(image, mask, str(rng.choice(design.body.textures)), frame, colours, rng)
    image[part] = part_colour * (0.92 + 0.16 * rng.random((int(part.sum()), 1), dtype=np.float32))
    return mask, part


# -- finishing ----------------------------------------------------------------------------------
def void_band(instances: np.ndarray) -> Mask:
    """Pixels with a 4-neighbour of another instance (or background): a band 2 px wide along
    every object outline, 1 px on each side, like the ~5 px void band of VOC at 500 px.

    Shapes:
        instances: ``(H, W)`` integer ids. Returns ``(H, W)`` bool.
    """
    band = np.zeros(instances.shape, dtype=bool)
    rows = instances[1:, :] != instances[:-1, :]
    cols = instances[:, 1:] != instances[:, :-1]
    band[1:, :] |= rows
    band[:-1, :] |= rows
    band[:, 1:] |= cols
    band[:, :-1] |= cols
    return band


def _finish(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Mild blur, photometric jitter and sensor noise; returns uint8."""
    sigma = rng.uniform(0.45, 0.8) * max(image.shape[0] / 128.0, 0.75)
    image = gaussian_filter(image, sigma=(sigma, sigma, 0.0), mode="nearest")
    image = image * rng.uniform(0.9, 1.1) + rng.uniform(-12, 12)
    image += rng.normal(0.0, rng.uniform(2.0, 6.0), image.shape).astype(np.float32)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def _describe(
    drawn: list[tuple[int, Mask, Mask]], instances: np.ndarray
) -> tuple[list[ObjectInfo], Mask]:
    """Pixel counts of the drawn objects and the mask of their visible parts."""
    objects, parts = [], np.zeros(instances.shape, dtype=bool)
    for k, (cls, mask, part) in enumerate(drawn, start=1):
        own = instances == k
        objects.append(
            ObjectInfo(
                class_id=cls,
                instance_id=k,
                area=int(mask.sum()),
                part_area=int(part.sum()),
                visible=int(own.sum()),
                part_visible=int((part & own).sum()),
            )
        )
        parts |= part & own
    return objects, parts


def render_image(rng: np.random.Generator, size: int = 128) -> RenderedImage:
    """Render one image with its class and instance masks.

    Args:
        rng: The image's own generator; the result depends on nothing else.
        size: Side of the square image in pixels (>= 32).

    Returns:
        The image, masks (with the void band) and what was drawn.
    """
    if size < 32:
        raise ValueError(f"size must be >= 32 pixels, got {size}")
    grid = Grid.square(size)
    classes = choose_classes(rng)
    scene = choose_scene(classes[0], rng)
    image = render_scene(scene, grid, rng)
    draw_clutter(image, grid, rng)
    instances = np.zeros((size, size), dtype=np.uint8)
    drawn: list[tuple[int, Mask, Mask]] = []
    for cls in classes:
        areas = [int(m.sum()) for _, m, _ in drawn]
        result = draw_object(image, instances, areas, CLASS_DESIGNS[cls], grid, rng)
        if result is not None:
            drawn.append((cls + 1, *result))
            instances[result[0]] = len(drawn)
    objects, parts = _describe(drawn, instances)
    class_of = np.array([0] + [cls for cls, _, _ in drawn], dtype=np.uint8)
    band = void_band(instances)
    label = np.where(band, IGNORE_INDEX, class_of[instances]).astype(np.uint8)
    instances = np.where(band, IGNORE_INDEX, instances).astype(np.uint8)
    return RenderedImage(_finish(image, rng), label, instances, scene, objects, parts)
