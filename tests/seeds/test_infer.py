"""The per-image driver: outputs, sizes, resume, sharding, configuration and input errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import wsss.seeds.infer as infer_module
from wsss.data.voc import VOCSegmentation
from wsss.errors import WsssError
from wsss.io.cams import CamFile, read_cams, write_cams
from wsss.io.images import read_label_png
from wsss.seeds import CONFIG_FILE, create_seeder, make_seeds, upsample_labels


def test_irnet_seeds_for_a_split(seed_data, weak_patch, tmp_path: Path):
    root, cam_dir = seed_data
    data = VOCSegmentation(root)
    out = tmp_path / "seeds"
    done = make_seeds(data, cam_dir, out, create_seeder("irnet"), progress=False)
    assert done == {"shard": 4, "written": 4}
    for image_id in data.ids:
        seed = read_label_png(out / f"{image_id}.png")
        gt = data.load_mask(image_id)
        assert seed.shape == gt.shape
        assert set(np.unique(seed)) <= {0, 255, *read_cams(cam_dir / f"{image_id}.npz").keys}
        labelled = seed != 255
        np.testing.assert_array_equal(seed[labelled], gt[labelled])  # never a wrong label
        assert (seed[weak_patch] == 255).all()  # weak CAM (0.15) between conf_bg and conf_fg
        assert labelled.mean() > 0.9
    assert json.loads((out / CONFIG_FILE).read_text()) == {
        "method": "irnet", "conf_fg": 0.3, "conf_bg": 0.05, "size": "image"}  # fmt: skip


def test_wsgcn_sizes(seed_data, tmp_path: Path):
    root, cam_dir = seed_data
    data = VOCSegmentation(root)
    seeder = create_seeder("wsgcn")
    make_seeds(data, cam_dir, tmp_path / "low", seeder, progress=False)
    make_seeds(data, cam_dir, tmp_path / "full", seeder, full_size=True, progress=False)
    for image_id in data.ids:
        cam = read_cams(cam_dir / f"{image_id}.npz")
        low = read_label_png(tmp_path / "low" / f"{image_id}.png")
        full = read_label_png(tmp_path / "full" / f"{image_id}.png")
        assert low.shape == cam.cams.shape[1:]
        assert full.shape == cam.size
        np.testing.assert_array_equal(full, upsample_labels(low, cam.size))
        assert {0, 255} <= set(np.unique(low)) <= {0, 255, *cam.keys}


def test_upsample_labels_by_hand():
    label = np.array([[1, 2], [3, 4]], np.uint8)
    np.testing.assert_array_equal(upsample_labels(label, (4, 4)), label.repeat(2, 0).repeat(2, 1))
    # 2 -> 7 rows: centre of output row y maps to floor((y + 0.5) * 2 / 7).
    assert upsample_labels(label, (7, 2))[:, 0].tolist() == [1, 1, 1, 3, 3, 3, 3]


def test_resume_rewrites_nothing(seed_data, tmp_path: Path, monkeypatch):
    root, cam_dir = seed_data
    data = VOCSegmentation(root)
    out = tmp_path / "seeds"
    seeder = create_seeder("irnet")
    make_seeds(data, cam_dir, out, seeder, progress=False)
    files = sorted(out.glob("*.png"))
    before = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in files}
    calls: list[Path] = []
    real_write = infer_module.write_label_png

    def counting_write(path, label):
        calls.append(path)
        real_write(path, label)

    monkeypatch.setattr(infer_module, "write_label_png", counting_write)
    assert make_seeds(data, cam_dir, out, seeder, progress=False) == {"shard": 4, "written": 0}
    assert calls == []
    assert {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in files} == before
    # A deleted file is made again, identical; the others stay untouched.
    (out / "im2.png").unlink()
    assert make_seeds(data, cam_dir, out, seeder, progress=False)["written"] == 1
    assert calls == [out / "im2.png"]
    after = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in files}
    assert after.pop("im2.png")[1] == before.pop("im2.png")[1]
    assert after == before


def test_exact_shards_under_two_ranks(seed_data, tmp_path: Path, monkeypatch):
    root, cam_dir = seed_data
    data = VOCSegmentation(root)
    out = tmp_path / "seeds"
    seeder = create_seeder("wsgcn")
    monkeypatch.setenv("WORLD_SIZE", "2")
    for rank, mine in ((1, {"im2", "im3"}), (0, {"im0", "im1"})):
        monkeypatch.setenv("RANK", str(rank))
        before = {p.stem for p in out.glob("*.png")}
        assert make_seeds(data, cam_dir, out, seeder, progress=False) == {"shard": 2, "written": 2}
        assert {p.stem for p in out.glob("*.png")} - before == mine
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert make_seeds(data, cam_dir, out, seeder, progress=False) == {"shard": 4, "written": 0}


def test_other_options_into_the_same_folder_is_an_error(seed_data, tmp_path: Path):
    root, cam_dir = seed_data
    data = VOCSegmentation(root)
    out = tmp_path / "seeds"
    make_seeds(data, cam_dir, out, create_seeder("wsgcn"), progress=False)
    with pytest.raises(WsssError, match=r"seeds\.json: this folder holds seeds made with other"):
        make_seeds(data, cam_dir, out, create_seeder("wsgcn", top=0.4), progress=False)
    with pytest.raises(WsssError, match="'size': \\('cam', 'image'\\)"):
        make_seeds(data, cam_dir, out, create_seeder("wsgcn"), full_size=True, progress=False)


def _write_npz(path: Path, **arrays: np.ndarray) -> None:
    """A CAM file written without write_cams's checks (to hold damage)."""
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


@pytest.mark.parametrize(
    "damage, method, pattern",
    [
        ("missing", "irnet", r"im1\.npz: missing CAM file \(run `wsss cam`"),
        ("nan", "wsgcn", r"im1\.npz: NaN or infinite values in 'cams'"),
        ("nan_high", "irnet", r"im1\.npz: NaN or infinite values in 'high_res'"),
        ("range", "irnet", r"im1\.npz: class id in 'keys' \[25\] out of range 1\.\.20"),
        ("size", "wsgcn", r"im1\.npz: CAM file is for a 35x39 \(HxW\) image, the image is 33x39"),
        ("no_high_res", "irnet", r"im1\.npz: CAM file has no full-resolution maps"),
    ],
)
def test_bad_cam_file_names_it(seed_data, tmp_path: Path, damage, method, pattern):
    root, cam_dir = seed_data
    path = cam_dir / "im1.npz"
    cam = read_cams(path)
    if damage == "missing":
        path.unlink()
    elif damage in ("nan", "nan_high"):
        key = "cams" if damage == "nan" else "high_res"
        arrays = {"keys": cam.keys, "cams": cam.cams, "high_res": cam.high_res,
                  "size": np.asarray(cam.size)}  # fmt: skip
        arrays[key] = arrays[key].copy()
        arrays[key][0, 1, 1] = np.nan
        _write_npz(path, **arrays)
    elif damage == "range":
        _write_npz(path, keys=np.array([25]), cams=cam.cams[:1], size=np.asarray(cam.size),
                   high_res=cam.high_res[:1])  # fmt: skip
    elif damage == "size":
        write_cams(path, CamFile(keys=cam.keys, cams=np.zeros((2, 9, 10)), size=(35, 39)))
    else:
        write_cams(path, CamFile(keys=cam.keys, cams=cam.cams, size=cam.size))
    data = VOCSegmentation(root)
    with pytest.raises(WsssError, match=pattern):
        make_seeds(data, cam_dir, tmp_path / "seeds", create_seeder(method), progress=False)
    assert (tmp_path / "seeds" / "im0.png").is_file()  # images before it are done
    assert not (tmp_path / "seeds" / "im1.png").exists()


def test_factory_errors(seed_data, tmp_path: Path):
    root, _cam_dir = seed_data
    with pytest.raises(WsssError, match="unknown seed method 'psa'; valid: irnet, wsgcn"):
        create_seeder("psa")
    with pytest.raises(WsssError, match="'irnet' has no option.*top; its options: conf_fg"):
        create_seeder("irnet", top=0.3)
    with pytest.raises(WsssError, match="CAM folder does not exist"):
        make_seeds(VOCSegmentation(root), tmp_path / "nope", tmp_path / "out",
                   create_seeder("irnet"), progress=False)  # fmt: skip
