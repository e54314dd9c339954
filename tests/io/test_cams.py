import zipfile
from pathlib import Path

import numpy as np
import pytest

from wsss.errors import WsssError
from wsss.io.cams import CamFile, read_cams, write_cams


def _cam(h=9, w=10, keys=(3, 7)) -> CamFile:
    rng = np.random.default_rng(0)
    c = len(keys)
    return CamFile(
        keys=np.array(keys),
        cams=rng.random((c, 3, 3)).astype(np.float32),
        size=(h, w),
        high_res=rng.random((c, h, w)).astype(np.float32),
    )


def test_round_trip_float16_no_pickle(tmp_path: Path):
    cam = _cam()
    write_cams(tmp_path / "a.npz", cam)
    back = read_cams(tmp_path / "a.npz", num_classes=21)
    assert back.keys.tolist() == [3, 7]
    assert back.cams.dtype == np.float16 and back.high_res.dtype == np.float16
    assert np.allclose(back.cams, cam.cams, atol=1e-3)
    assert back.size == (9, 10)
    with np.load(tmp_path / "a.npz", allow_pickle=False) as data:
        assert sorted(data.files) == ["cams", "high_res", "keys", "size"]


def test_stride4_shape_is_ceil(tmp_path: Path):
    cam = _cam(h=9, w=10)  # ceil(9/4)=3, ceil(10/4)=3
    write_cams(tmp_path / "a.npz", cam)
    bad = CamFile(keys=cam.keys, cams=np.zeros((2, 2, 2)), size=(9, 10))
    with pytest.raises(WsssError, match=r"expected \(2, 3, 3\)"):
        write_cams(tmp_path / "b.npz", bad)
    assert not (tmp_path / "b.npz").exists()


def test_nan_and_range_errors(tmp_path: Path):
    cam = _cam()
    cams = cam.cams.copy()
    cams[0, 0, 0] = np.nan
    np.savez(tmp_path / "nan.npz", keys=cam.keys, cams=cams, size=np.array([9, 10]))
    with pytest.raises(WsssError, match="nan.npz: NaN"):
        read_cams(tmp_path / "nan.npz")
    np.savez(tmp_path / "k.npz", keys=np.array([3, 40]), cams=cam.cams, size=np.array([9, 10]))
    with pytest.raises(WsssError, match="out of range"):
        read_cams(tmp_path / "k.npz", num_classes=21)
    np.savez(tmp_path / "m.npz", keys=cam.keys, size=np.array([9, 10]))
    with pytest.raises(WsssError, match="lacks"):
        read_cams(tmp_path / "m.npz")


def test_corrupt_and_pickled_files_are_refused(tmp_path: Path):
    (tmp_path / "c.npz").write_bytes(b"PK\x03\x04 garbage")
    with pytest.raises(WsssError, match="corrupt CAM file"):
        read_cams(tmp_path / "c.npz")
    obj = np.empty(1, dtype=object)
    obj[0] = {"a": 1}
    with zipfile.ZipFile(tmp_path / "p.npz", "w"):
        pass
    np.savez(tmp_path / "p.npz", keys=obj, cams=np.zeros((1, 1, 1)), size=np.array([1, 1]))
    with pytest.raises(WsssError, match="corrupt CAM file"):
        read_cams(tmp_path / "p.npz")
    with pytest.raises(WsssError, match="missing CAM file"):
        read_cams(tmp_path / "none.npz")
