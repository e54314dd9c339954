"""Class lists of the supported datasets."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ClassSet:
    """Names of a dataset's label ids.

    Args:
        names: Name of each label id ``0..num_classes-1``.
        has_background: Whether id 0 is a background class that image-level labels leave out
            (VOC, COCO, synthetic). ADE20K and Cityscapes have none: every class is a label.
    """

    names: tuple[str, ...]
    has_background: bool = True

    @property
    def num_classes(self) -> int:
        """Number of label ids, background included."""
        return len(self.names)

    @property
    def num_labels(self) -> int:
        """Length of the image-level label vector (background excluded)."""
        return self.num_classes - int(self.has_background)

    @property
    def offset(self) -> int:
        """Label id of image-level label index 0 (1 with a background class, else 0)."""
        return int(self.has_background)


VOC_CLASSES = ClassSet(
    (
        "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
        "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
        "sheep", "sofa", "train", "tvmonitor",
    )
)  # fmt: skip

COCO_CLASSES = ClassSet(
    (
        "background", "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train",
        "truck", "boat", "traffic light", "fire hydrant", "stop sign", "parking meter", "bench",
        "bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe",
        "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard",
        "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
        "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl",
        "banana", "apple", "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza",
        "donut", "cake", "chair", "couch", "potted plant", "bed", "dining table", "toilet", "tv",
        "laptop", "mouse", "remote", "keyboard", "cell phone", "microwave", "oven", "toaster",
        "sink", "refrigerator", "book", "clock", "vase", "scissors", "teddy bear", "hair drier",
        "toothbrush",
    )
)  # fmt: skip

CITYSCAPES_CLASSES = ClassSet(
    (
        "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
        "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train",
        "motorcycle", "bicycle",
    ),
    has_background=False,
)  # fmt: skip

ADE20K_CLASSES = ClassSet(
    (
        "wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed", "windowpane",
        "grass", "cabinet", "sidewalk", "person", "earth", "door", "table", "mountain", "plant",
        "curtain", "chair", "car", "water", "painting", "sofa", "shelf", "house", "sea", "mirror",
        "rug", "field", "armchair", "seat", "fence", "desk", "rock", "wardrobe", "lamp",
        "bathtub", "railing", "cushion", "base", "box", "column", "signboard", "chest of drawers",
        "counter", "sand", "sink", "skyscraper", "fireplace", "refrigerator", "grandstand",
        "path", "stairs", "runway", "case", "pool table", "pillow", "screen door", "stairway",
        "river", "bridge", "bookcase", "blind", "coffee table", "toilet", "flower", "book",
        "hill", "bench", "countertop", "stove", "palm", "kitchen island", "computer",
        "swivel chair", "boat", "bar", "arcade machine", "hovel", "bus", "towel", "light",
        "truck", "tower", "chandelier", "awning", "streetlight", "booth", "television receiver",
        "airplane", "dirt track", "apparel", "pole", "land", "bannister", "escalator", "ottoman",
        "bottle", "buffet", "poster", "stage", "van", "ship", "fountain", "conveyer belt",
        "canopy", "washer", "plaything", "swimming pool", "stool", "barrel", "basket",
        "waterfall", "tent", "bag", "minibike", "cradle", "oven", "ball", "food", "step", "tank",
        "trade name", "microwave", "pot", "animal", "bicycle", "lake", "dishwasher", "screen",
        "blanket", "sculpture", "hood", "sconce", "vase", "traffic light", "tray", "ashcan",
        "fan", "pier", "crt screen", "plate", "monitor", "bulletin board", "shower", "radiator",
        "glass", "clock", "flag",
    ),
    has_background=False,
)  # fmt: skip
