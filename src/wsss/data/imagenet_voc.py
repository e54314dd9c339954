"""ImageNet-1k classes grouped into the 20 PASCAL VOC classes (for CAMs from an ImageNet head).

Indices are those of the standard 1000-class order (sorted WordNet ids), the order of
torchvision's ``weights.meta["categories"]`` and of the EfficientNet-Lite0 head. The table
follows the VOC annotation guidelines where they draw a line: ``car`` leaves out emergency
vehicles (ambulance, police van) and lorries, ``sheep`` and ``cow`` are the domestic animals,
``bicycle`` and ``motorbike`` leave out tri- and unicycles. A few parts whose synsets fire on the
whole object are kept (aeroplane ``wing``, car ``grille`` and ``car wheel``).

ImageNet has no class for a person. :data:`PERSON_PROXIES` lists what it has instead: three
classes that are people (ballplayer, groom, scuba diver) and the clothes and head wear people in
photographs wear; whether ``person`` uses them is a choice of the caller
(:func:`voc_synsets`), measured in ``docs/imagenet.md``. ``pottedplant`` has only ``pot``
(a flowerpot, usually with its plant) and ``diningtable`` only ``dining table``.
"""

from __future__ import annotations

from wsss.data.classes import VOC_CLASSES

__all__ = ["IMAGENET_VOC", "PERSON_PROXIES", "voc_synsets"]

#: VOC class -> ImageNet-1k class indices.
IMAGENET_VOC: dict[str, tuple[int, ...]] = {
    # airliner, warplane, wing
    "aeroplane": (404, 895, 908),
    # bicycle-built-for-two, mountain bike
    "bicycle": (444, 671),
    # cock ... great grey owl; black grouse ... black swan; white stork ... albatross
    "bird": (*range(7, 25), *range(80, 101), *range(127, 147)),
    # aircraft carrier, canoe, catamaran, container ship, fireboat, gondola, lifeboat, liner,
    # pirate ship, schooner, speedboat, submarine, trimaran, yawl
    "boat": (403, 472, 484, 510, 554, 576, 625, 628, 724, 780, 814, 833, 871, 914),
    # beer bottle, pill bottle, pop bottle, water bottle, wine bottle
    "bottle": (440, 720, 737, 898, 907),
    # minibus, school bus, trolleybus
    "bus": (654, 779, 874),
    # beach wagon, cab, car wheel, convertible, grille, jeep, limousine, minivan, Model T,
    # pickup, racer, sports car
    "car": (436, 468, 479, 511, 581, 609, 627, 656, 661, 717, 751, 817),
    # tabby, tiger cat, Persian cat, Siamese cat, Egyptian cat (the domestic cats)
    "cat": tuple(range(281, 286)),
    # barber chair, folding chair, rocking chair, throne
    "chair": (423, 559, 765, 857),
    # ox, water buffalo
    "cow": (345, 346),
    # dining table
    "diningtable": (532,),
    # the 118 dog breeds, Chihuahua ... Mexican hairless
    "dog": tuple(range(151, 269)),
    # sorrel, horse cart
    "horse": (339, 603),
    # moped, motor scooter
    "motorbike": (665, 670),
    # none: see PERSON_PROXIES
    "person": (),
    # pot (flowerpot)
    "pottedplant": (738,),
    # ram
    "sheep": (348,),
    # studio couch
    "sofa": (831,),
    # bullet train, electric locomotive, freight car, passenger car, steam locomotive, streetcar
    "train": (466, 547, 565, 705, 820, 829),
    # desktop computer, monitor, screen, television
    "tvmonitor": (527, 664, 782, 851),
}

#: ImageNet classes that stand for a person: ballplayer, groom, scuba diver, and what people wear
#: (abaya, academic gown, apron, bathing cap, bikini, bolo tie, bonnet, bow tie, brassiere,
#: bulletproof vest, cardigan, cloak, cowboy hat, crash helmet, football helmet, fur coat, gown,
#: hoopskirt, jean, jersey, kimono, lab coat, maillot, maillot tank suit, military uniform,
#: miniskirt, mortarboard, overskirt, pajama, poncho, sarong, shower cap, ski mask, sombrero,
#: stole, suit, sunglass, sunglasses, sweatshirt, swimming trunks, trench coat, vestment, wig,
#: Windsor tie).
PERSON_PROXIES: tuple[int, ...] = (
    981, 982, 983,
    399, 400, 411, 433, 445, 451, 452, 457, 459, 465, 474, 501, 515, 518, 560, 568, 578, 601,
    608, 610, 614, 617, 638, 639, 652, 655, 667, 689, 697, 735, 775, 793, 796, 808, 824, 834,
    836, 837, 841, 842, 869, 887, 903, 906,
)  # fmt: skip


def voc_synsets(*, person_proxies: bool = True) -> list[tuple[int, ...]]:
    """The ImageNet classes of each VOC label, in label order (aeroplane ... tvmonitor).

    Args:
        person_proxies: Give ``person`` the classes of :data:`PERSON_PROXIES` (else none: its
            CAM is zero everywhere).
    """
    table = dict(IMAGENET_VOC)
    if person_proxies:
        table["person"] = PERSON_PROXIES
    return [table[name] for name in VOC_CLASSES.names[VOC_CLASSES.offset :]]
