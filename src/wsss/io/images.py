"""Reading images and label PNGs with errors that name the file and the problem."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from wsss.errors import WsssError
from wsss.io.palette import IGNORE_INDEX


def _open(path: Path, what: str) -> Image.Image:
    if not path.is_file():
        raise WsssError(f"missing {what}", path)
    try:
        image = Image.open(path)
        image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise WsssError(f"corrupt or unreadable {what} ({err})", path) from None
    return image


def read_image(path: str | Path) -> np.ndarray:
    """Read an image as RGB.

    Returns:
        ``(H, W, 3)`` uint8 array.

    Raises:
        WsssError: the file is missing, truncated or not an image.
    """
    image = _open(Path(path), "image")
    return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()


def image_size(path: str | Path) -> tuple[int, int]:
    """The ``(H, W)`` of an image file, from its header (the pixels are not decoded).

    Raises:
        WsssError: the file is missing or not an image.
    """
    path = Path(path)
    if not path.is_file():
        raise WsssError("missing image", path)
    try:
        with Image.open(path) as image:
            width, height = image.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise WsssError(f"corrupt or unreadable image ({err})", path) from None
    return height, width


def read_label_png(
    path: str | Path,
    *,
    size: tuple[int, int] | None = None,
    num_classes: int | None = None,
    what: str = "mask",
    reference: str = "the image's",
) -> np.ndarray:
    """Read a label PNG (palette or greyscale) as class ids.

    Args:
        path: The PNG.
        size: Expected ``(H, W)``; a different size is an error.
        num_classes: If given, ids must lie in ``[0, num_classes)`` or be 255.
        what: What the file is, for the size error (``mask``, ``prediction``, ...).
        reference: Whose size ``size`` is, for the size error (``the image's``, ...).

    Returns:
        ``(H, W)`` uint8 array of class ids, 255 = ignore.

    Raises:
        WsssError: missing or corrupt file, colour (RGB) PNG, wrong size, class id out of range.
    """
    path = Path(path)
    image = _open(path, "label PNG")
    if image.mode not in ("P", "L"):
        raise WsssError(
            f"label PNG has mode {image.mode!r}; expected a palette ('P') or greyscale ('L') image",
            path,
        )
    label = np.asarray(image, dtype=np.uint8).copy()
    if size is not None and label.shape != tuple(size):
        raise WsssError(
            f"{what} size {label.shape[1]}x{label.shape[0]} (WxH) does not match {reference} "
            f"{size[1]}x{size[0]}",
            path,
        )
    if num_classes is not None:
        bad = (label >= num_classes) & (label != IGNORE_INDEX)
        if bad.any():
            ids = sorted(int(v) for v in np.unique(label[bad]))[:5]
            raise WsssError(
                f"class id(s) {ids} out of range: expected 0..{num_classes - 1} or 255", path
            )
    return label
