"""Version 3 of the synthetic benchmark: what it draws (the version-2 tables stay in ``design``).

Version 2 made the classes of a pair identical in body shape, texture and colour, so that only a
part under a tenth of the object told them apart; a network trained from scratch in minutes could
then find the objects but not tell the classes apart, even with full supervision
(``docs/synthetic.md``). Version 3 keeps the VOC layout, the class names, the scenes, the context
bias, the clutter and the exclusive part colours, and gives every class a BODY that carries class
evidence of its own:

* a texture family of its own (:data:`TEXTURES_V3`: each class's pattern is drawn on its body with
  probability :data:`OWN_TEXTURE_PROB`, otherwise one of the other classes' patterns), in two
  shades of one colour from the palette that scenes and clutter share, so colour still tells
  nothing;
* a body shape shared with one other class (the version-2 pairs), so shape narrows the class
  down to two;
* the part (a glyph at a fixed place, in the class's exclusive colour) remains the one cue that
  decides the class on its own and the cheapest one to learn.

Clutter reuses every body shape and texture, without parts and smaller than the objects.
"""

from __future__ import annotations

from dataclasses import dataclass

from wsss.synth.design import BODY_FAMILIES, CLASS_DESIGNS, PART_COLOURS, SCENES

#: Probability that an image's scene is the preferred scene of its first object's class.
PREFERRED_SCENE_PROB_V3 = 0.4
#: Probability that each further object is drawn from the first class's companions.
COMPANION_PROB_V3 = 0.5
#: Probabilities of 1, 2 and 3 objects per image.
OBJECT_COUNT_PROBS_V3 = (0.45, 0.4, 0.15)
#: Object length as a fraction of the image side.
OBJECT_SIZE_RANGE_V3 = (0.4, 0.7)
#: Clutter shapes per image (inclusive range) and their length as a fraction of the side.
CLUTTER_COUNT_V3 = (1, 3)
CLUTTER_SIZE_RANGE_V3 = (0.08, 0.2)
#: Probability that an object's body wears its own class's texture (else another class's).
OWN_TEXTURE_PROB = 0.8
#: Range of the brightness step between a body texture's two shades (RGB levels).
TEXTURE_CONTRAST_V3 = (45.0, 80.0)

#: Texture families of version 3: one per class (same order as the classes) in the object frame.
TEXTURES_V3 = (
    "stripes", "waves", "checker", "hatch", "zigzag", "spots", "dots", "rings", "spokes", "bricks",
)  # fmt: skip


@dataclass(frozen=True)
class ClassDesign3:
    """The version-3 appearance of one foreground class.

    Args:
        name: Class name (label id = position in :data:`CLASS_DESIGNS_V3` + 1).
        shape: Body shape family (:data:`~wsss.synth.design.BODY_FAMILIES`), shared by a pair.
        aspect: Range of the body's height / length ratio.
        texture: The class's own texture family (:data:`TEXTURES_V3`).
        part: Discriminative part (as in version 2).
        part_colour: The part's exclusive colour (:data:`~wsss.synth.design.PART_COLOURS`).
        scene: Preferred scene.
        companions: Classes that co-occur with this one more often than chance.
    """

    name: str
    shape: str
    aspect: tuple[float, float]
    texture: str
    part: str
    part_colour: str
    scene: str
    companions: tuple[str, ...]


def _from_v2(index: int) -> ClassDesign3:
    d = CLASS_DESIGNS[index]
    return ClassDesign3(
        name=d.name,
        shape=d.body.family,
        aspect=d.body.aspect,
        texture=TEXTURES_V3[index],
        part=d.part,
        part_colour=d.part_colour,
        scene=d.scene,
        companions=d.companions,
    )


#: The ten classes: version 2's names, shapes, parts, part colours, scenes and companions, each
#: with a texture of its own.
CLASS_DESIGNS_V3: tuple[ClassDesign3, ...] = tuple(_from_v2(i) for i in range(len(CLASS_DESIGNS)))


def check_design3() -> None:
    """Check that the version-3 tables refer to known names and that textures are one a class.

    Raises:
        ValueError: an unknown name or a texture used twice.
    """
    names = {d.name for d in CLASS_DESIGNS_V3}
    for d in CLASS_DESIGNS_V3:
        unknown = (
            [d.shape] * (d.shape not in BODY_FAMILIES)
            + [d.texture] * (d.texture not in TEXTURES_V3)
            + [d.scene] * (d.scene not in SCENES)
            + [d.part_colour] * (d.part_colour not in PART_COLOURS)
            + [c for c in d.companions if c not in names]
        )
        if unknown:
            raise ValueError(f"class {d.name!r} refers to unknown names {unknown}")
    if len({d.texture for d in CLASS_DESIGNS_V3}) != len(CLASS_DESIGNS_V3):
        raise ValueError("every version-3 class needs a texture of its own")
