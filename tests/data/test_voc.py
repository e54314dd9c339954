from pathlib import Path

import numpy as np
import pytest

from fakes import make_voc
from wsss.data.voc import VOCSegmentation
from wsss.errors import WsssError


def test_real_samples_load(voc_samples: Path):
    data = VOCSegmentation(voc_samples, "samples")
    assert len(data) == 6
    for sample in data:
        assert sample.image.dtype == np.uint8 and sample.image.ndim == 3
        assert sample.mask.shape == sample.image.shape[:2]
        present = set(np.unique(sample.mask).tolist()) - {0, 255}
        assert set((np.flatnonzero(sample.labels) + 1).tolist()) == present
        assert sample.labels.shape == (20,)


def test_root_from_parent_and_env(voc_samples: Path, monkeypatch):
    assert VOCSegmentation(voc_samples.parent, "samples").root == voc_samples
    monkeypatch.setenv("WSSS_VOC_ROOT", str(voc_samples))
    assert len(VOCSegmentation(None, "samples")) == 6
    monkeypatch.delenv("WSSS_VOC_ROOT")
    with pytest.raises(WsssError, match="WSSS_VOC_ROOT"):
        VOCSegmentation(None, "samples")


def test_errors_name_file_and_problem(tmp_path: Path):
    mask = np.zeros((8, 8), np.uint8)
    mask[2:5, 2:5] = 3
    root = make_voc(tmp_path / "voc", {"a": mask, "b": mask})
    lists = root / "ImageSets" / "Segmentation"
    (lists / "escape.txt").write_text("a\n../../etc/passwd\n")
    with pytest.raises(WsssError, match=r"escape.txt: unsafe image id '\.\./\.\./etc/passwd'"):
        VOCSegmentation(root, "escape")
    (lists / "empty.txt").write_text("\n\n")
    with pytest.raises(WsssError, match="empty.txt: empty split"):
        VOCSegmentation(root, "empty")
    with pytest.raises(WsssError, match="nosuch.txt: missing split file"):
        VOCSegmentation(root, "nosuch")
    data = VOCSegmentation(root, "train")
    (root / "SegmentationClass" / "b.png").unlink()
    with pytest.raises(WsssError, match="b.png: missing label PNG"):
        data[1]
    bad = np.zeros((8, 8), np.uint8)
    bad[0, 0] = 21
    from wsss.io.palette import write_label_png

    write_label_png(root / "SegmentationClass" / "b.png", bad)
    with pytest.raises(WsssError, match=r"b.png: class id\(s\) \[21\] out of range"):
        data[1]
    write_label_png(root / "SegmentationClass" / "b.png", np.zeros((7, 8), np.uint8))
    with pytest.raises(WsssError, match="b.png: mask size 8x7"):
        data[1]


def test_deeplab_style_list_and_label_file(tmp_path: Path):
    mask = np.zeros((8, 8), np.uint8)
    root = make_voc(tmp_path / "voc", {"x1": mask})
    aug = root / "ImageSets" / "SegmentationAug"
    aug.mkdir(parents=True)
    (aug / "train_aug.txt").write_text("/JPEGImages/x1.jpg /SegmentationClassAug/x1.png\n")
    (root / "image_labels.json").write_text('{"x1": [5, 12]}')
    data = VOCSegmentation(root, "train_aug")
    assert data.ids == ["x1"]
    sample = data[0]
    assert sample.mask is None
    assert (np.flatnonzero(sample.labels) + 1).tolist() == [5, 12]
