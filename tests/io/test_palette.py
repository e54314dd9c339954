from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from wsss.errors import WsssError
from wsss.io.images import read_image, read_label_png
from wsss.io.palette import VOC_PALETTE, colorize, write_label_png


def test_palette_known_colours():
    # VOC devkit: 1 aeroplane (128,0,0), 2 bicycle (0,128,0), 15 person (192,128,128),
    # 20 tvmonitor (0,64,128), 255 void (224,224,192).
    assert VOC_PALETTE[0].tolist() == [0, 0, 0]
    assert VOC_PALETTE[1].tolist() == [128, 0, 0]
    assert VOC_PALETTE[2].tolist() == [0, 128, 0]
    assert VOC_PALETTE[15].tolist() == [192, 128, 128]
    assert VOC_PALETTE[20].tolist() == [0, 64, 128]
    assert VOC_PALETTE[255].tolist() == [224, 224, 192]


def test_real_masks_use_the_voc_palette_and_round_trip(voc_samples: Path, tmp_path: Path):
    for png in sorted((voc_samples / "SegmentationClass").glob("*.png")):
        with Image.open(png) as im:
            assert im.mode == "P"
            pal = np.array(im.getpalette()[: 3 * 21]).reshape(21, 3)
        assert (pal == VOC_PALETTE[:21]).all()
        label = read_label_png(png, num_classes=21)
        out = tmp_path / png.name
        write_label_png(out, label)
        assert (read_label_png(out) == label).all()
        with Image.open(out) as im:
            assert im.mode == "P"
            rgb = np.asarray(im.convert("RGB"))
        assert (rgb == colorize(label)).all()


def test_label_errors(tmp_path: Path):
    with pytest.raises(WsssError, match="missing label PNG"):
        read_label_png(tmp_path / "none.png")
    mask = np.zeros((4, 5), np.uint8)
    mask[0, 0] = 30
    write_label_png(tmp_path / "m.png", mask)
    with pytest.raises(WsssError, match=r"out of range.*\[30\]|\[30\] out of range"):
        read_label_png(tmp_path / "m.png", num_classes=21)
    with pytest.raises(WsssError, match="does not match"):
        read_label_png(tmp_path / "m.png", size=(5, 4))
    Image.new("RGB", (3, 3)).save(tmp_path / "rgb.png")
    with pytest.raises(WsssError, match="mode 'RGB'"):
        read_label_png(tmp_path / "rgb.png")


def test_corrupt_image_is_named(voc_samples: Path, tmp_path: Path):
    data = (voc_samples / "JPEGImages" / "2007_000175.jpg").read_bytes()
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(data[: len(data) // 3])
    with pytest.raises(WsssError, match="bad.jpg: corrupt"):
        read_image(bad)
    (tmp_path / "junk.jpg").write_bytes(b"not an image")
    with pytest.raises(WsssError, match="junk.jpg: corrupt"):
        read_image(tmp_path / "junk.jpg")


def test_write_rejects_bad_labels(tmp_path: Path):
    with pytest.raises(ValueError):
        write_label_png(tmp_path / "x.png", np.zeros((2, 2, 3), np.uint8))
    with pytest.raises(ValueError):
        write_label_png(tmp_path / "x.png", np.full((2, 2), 300))
    assert not list(tmp_path.iterdir())
