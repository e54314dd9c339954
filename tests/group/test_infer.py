"""Group CAM inference: grouping by hand, files written once under sharding, resume, outputs,
saliency mode and checkpoint kinds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from wsss.cam.infer import load_trained
from wsss.data.transforms import EvalTransform
from wsss.data.voc import VOCSegmentation
from wsss.errors import WsssError
from wsss.group.infer import (
    OUTPUTS,
    group_multiscale_cams,
    infer_group_cams,
    load_group_trained,
)
from wsss.group.saliency import saliency_cams
from wsss.group.sampler import inference_groups
from wsss.io.cams import read_cams

# 0, 1, 4 share class A; 2, 3 share B; 5 has A and B
LABELS = np.array([[1, 0], [1, 0], [0, 1], [0, 1], [1, 0], [1, 1]])


def test_inference_groups_cover_each_image_once_and_pad_the_last():
    for k, seed in [(4, 0), (4, 3), (3, 1), (5, 2), (2, 0)]:
        groups = inference_groups(LABELS, k, seed=seed)
        owned = sorted(i for g in groups for i in g.members[: g.owned])
        assert owned == list(range(6)), (k, seed)
        assert all(len(g.members) == k and len(set(g.members)) == k for g in groups)
        assert all(g.owned == k for g in groups[:-1])
    # K = 4 over 6 images: the last group owns 2 and borrows 2 covered images, the best partners
    # of its anchor first (ties: the earlier in the permutation)
    last = inference_groups(LABELS, 4, seed=0)[-1]
    assert last.owned == 2
    anchor, pads = last.members[0], last.members[2:]
    shared = [int((LABELS[anchor] & LABELS[p]).sum()) for p in pads]
    others = [i for i in range(6) if i not in last.members]
    assert min(shared) >= max((int((LABELS[anchor] & LABELS[i]).sum()) for i in others), default=0)
    # fewer images than K: one short group, nothing to pad with
    assert inference_groups(LABELS[:3], 4, seed=0)[0].owned == 3
    assert len(inference_groups(LABELS[:3], 4, seed=0)[0].members) == 3


def _folders(base: Path) -> dict[str, Path]:
    return {o: base / o for o in OUTPUTS}


def _files(folder: Path) -> dict[str, bytes]:
    return {p.stem: p.read_bytes() for p in sorted(folder.glob("*.npz"))}


@pytest.fixture(scope="module")
def model(group_run: Path):
    return load_group_trained(group_run, "cpu")


def test_sharded_runs_write_every_id_once_and_resume(model, tiny_voc, tmp_path, monkeypatch):
    net, _ = model
    data = VOCSegmentation(tiny_voc)
    kwargs = {"group_size": 3, "seed": 0, "scales": (1.0, 0.5), "progress": False}
    whole = infer_group_cams(net, data, _folders(tmp_path / "one"), **kwargs)
    assert whole == {"groups": 3, "shard": 9, "written": 27}
    shards = []
    monkeypatch.setenv("WORLD_SIZE", "2")
    for rank in (0, 1):
        monkeypatch.setenv("RANK", str(rank))
        shards.append(infer_group_cams(net, data, _folders(tmp_path / "two"), **kwargs))
    assert [s["groups"] for s in shards] == [2, 1] and sum(s["shard"] for s in shards) == 9
    assert sum(s["written"] for s in shards) == 27
    monkeypatch.delenv("WORLD_SIZE")
    monkeypatch.delenv("RANK")
    for output in OUTPUTS:
        one, two = _files(tmp_path / "one" / output), _files(tmp_path / "two" / output)
        assert sorted(one) == sorted(data.ids) and one == two  # same bytes, whatever the sharding
    # resume: nothing to do; one missing file recomputes its group only, with the same bytes
    assert infer_group_cams(net, data, _folders(tmp_path / "one"), **kwargs)["written"] == 0
    before = (tmp_path / "one" / "graph" / "img04.npz").read_bytes()
    (tmp_path / "one" / "graph" / "img04.npz").unlink()
    assert infer_group_cams(net, data, _folders(tmp_path / "one"), **kwargs)["written"] == 1
    assert (tmp_path / "one" / "graph" / "img04.npz").read_bytes() == before


def test_files_hold_the_image_classes_max_normalised(model, tiny_voc, tmp_path):
    net, _ = model
    data = VOCSegmentation(tiny_voc)
    infer_group_cams(net, data, {"ensemble": tmp_path}, group_size=3, scales=(1.0,),
                     progress=False)  # fmt: skip
    for image_id in data.ids:
        cam = read_cams(tmp_path / f"{image_id}.npz", num_classes=21)
        present = np.flatnonzero(data.image_labels(image_id, data.load_mask(image_id))) + 1
        assert cam.keys.tolist() == present.tolist()
        assert cam.size == data.load_mask(image_id).shape and cam.high_res is not None
        peaks = cam.cams.reshape(len(cam.keys), -1).max(axis=1)
        assert np.all((peaks > 0.99) | (peaks == 0)) and cam.cams.min() >= 0


def test_outputs_differ_and_ensemble_is_their_average(model, tiny_voc):
    net, _ = model
    data = VOCSegmentation(tiny_voc)
    samples = [EvalTransform()(data.load(i)) for i in data.ids[:5]]  # 20x20 and 16x24 images
    images = [s["image"] for s in samples]
    labels = torch.stack([torch.as_tensor(s["labels"]) for s in samples])
    sums = group_multiscale_cams(net, images[:3], labels[:3], scales=(1.0, 0.5))
    for k, image in enumerate(images[:3]):
        (inter, inter_hi), (graph, graph_hi), (ens, ens_hi) = (sums[o][k] for o in OUTPUTS)
        h, w = image.shape[-2:]
        assert inter.shape == (20, -(-h // 4), -(-w // 4)) and inter_hi.shape == (20, h, w)
        assert not torch.allclose(inter, graph, atol=1e-4)
        torch.testing.assert_close(ens, (inter + graph) / 2)
        torch.testing.assert_close(ens_hi, (inter_hi + graph_hi) / 2)
    # same-size images (0, 2, 4; 0 and 4 share a class): the intermediate output of image 0 does
    # not depend on its group, the graph output does
    same = [0, 2, 4]
    grouped = group_multiscale_cams(net, [images[i] for i in same], labels[same], scales=(1.0,))
    alone = group_multiscale_cams(net, images[:1], labels[:1], scales=(1.0,))
    torch.testing.assert_close(alone["intermediate"][0][0], grouped["intermediate"][0][0])
    assert not torch.allclose(alone["graph"][0][0], grouped["graph"][0][0], atol=1e-5)


def test_saliency_mode(model, tiny_voc, tmp_path):
    net, _ = model
    data = VOCSegmentation(tiny_voc)
    rng = np.random.default_rng(0)
    sal_dir = tmp_path / "saliency"
    sal_dir.mkdir()
    for image_id in data.ids:
        h, w = data.load_mask(image_id).shape
        Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8)).save(
            sal_dir / f"{image_id}.png"
        )
    kwargs = {"group_size": 3, "scales": (1.0,), "progress": False}
    infer_group_cams(net, data, {"graph": tmp_path / "plain"}, **kwargs)
    infer_group_cams(net, data, {"graph": tmp_path / "sal"}, saliency=sal_dir, **kwargs)
    seen = set()  # both sides of the paper's rule occur in the split (the check is not vacuous)
    for image_id in data.ids:
        plain = read_cams(tmp_path / "plain" / f"{image_id}.npz")
        sal = read_cams(tmp_path / "sal" / f"{image_id}.npz")
        s = np.asarray(Image.open(sal_dir / f"{image_id}.png"), np.float32) / 255
        expected = (plain.high_res.astype(np.float32) + s) / 2
        np.testing.assert_allclose(sal.high_res.astype(np.float32), expected, atol=2e-3)
        # background threshold 0.5 on the stored maps = the paper's argmax([1 - S, CAMs])
        cams = plain.high_res.astype(np.float32)
        margin = np.abs(cams.max(0) - (1 - s)) > 1e-2  # away from float16 ties
        paper = cams.max(0) > 1 - s
        stored = sal.high_res.astype(np.float32).max(0) > 0.5
        assert np.array_equal(paper[margin], stored[margin])
        seen.update(np.unique(paper[margin]).tolist())
    assert seen == {False, True}
    torch.testing.assert_close(saliency_cams(torch.ones(1, 2, 2), torch.zeros(2, 2)),
                               torch.full((1, 2, 2), 0.5))  # fmt: skip
    (sal_dir / "img03.png").unlink()
    with pytest.raises(WsssError, match="missing saliency map"):
        infer_group_cams(net, data, {"graph": tmp_path / "sal2"}, saliency=sal_dir, **kwargs)


def test_checkpoint_kind_mismatch(group_run, single_run):
    with pytest.raises(WsssError, match="holds a single-image CAM model.*--model single"):
        load_group_trained(single_run, "cpu")
    with pytest.raises(WsssError, match="holds a group model.*--model group"):
        load_trained(group_run, "cpu")
    net, config = load_group_trained(group_run / "final.pt", "cpu")
    assert not net.training and config.group_size == 3
