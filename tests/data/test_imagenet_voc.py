"""The ImageNet -> VOC class table: coverage, disjoint groups, and the classes it names."""

from __future__ import annotations

from torchvision.models import ResNet50_Weights

from wsss.data.classes import VOC_CLASSES
from wsss.data.imagenet_voc import IMAGENET_VOC, PERSON_PROXIES, voc_synsets

NAMES = ResNet50_Weights.IMAGENET1K_V1.meta["categories"]


def _names(indices) -> set[str]:
    return {NAMES[k] for k in indices}


def test_every_voc_class_once_and_groups_disjoint():
    assert list(IMAGENET_VOC) == list(VOC_CLASSES.names[1:])
    everything = [k for group in IMAGENET_VOC.values() for k in group] + list(PERSON_PROXIES)
    assert len(everything) == len(set(everything))
    assert all(0 <= k < 1000 for k in everything)


def test_groups_hold_the_expected_classes():
    assert len(IMAGENET_VOC["dog"]) == 118
    assert {"Chihuahua", "French bulldog", "Mexican hairless"} <= _names(IMAGENET_VOC["dog"])
    assert _names(IMAGENET_VOC["cat"]) == {"tabby", "tiger cat", "Persian cat", "Siamese cat",
                                           "Egyptian cat"}  # fmt: skip
    assert {"canoe", "speedboat", "yawl", "schooner"} <= _names(IMAGENET_VOC["boat"])
    assert {"passenger car", "electric locomotive", "steam locomotive"} <= _names(
        IMAGENET_VOC["train"]
    )
    assert {"cock", "great grey owl", "black swan", "albatross"} <= _names(IMAGENET_VOC["bird"])
    assert "ambulance" not in _names(IMAGENET_VOC["car"])  # VOC: emergency vehicles are not cars
    assert _names(IMAGENET_VOC["sofa"]) == {"studio couch"}
    assert _names(IMAGENET_VOC["diningtable"]) == {"dining table"}
    assert {"ballplayer", "groom", "scuba diver", "jersey", "suit"} <= _names(PERSON_PROXIES)
    assert IMAGENET_VOC["person"] == ()


def test_voc_synsets_in_label_order():
    with_proxies = voc_synsets()
    assert len(with_proxies) == 20
    assert with_proxies[VOC_CLASSES.names.index("person") - 1] == PERSON_PROXIES
    assert voc_synsets(person_proxies=False)[14] == ()
    assert with_proxies[0] == IMAGENET_VOC["aeroplane"]
