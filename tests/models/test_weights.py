"""ImageNet weights from a local file: the cache, a named file or folder, and the offline error."""

from __future__ import annotations

import urllib.error
from pathlib import Path

import pytest
import torch

from cli_runner import run_wsss
from wsss.errors import WsssError
from wsss.models import weights as W
from wsss.models.backbones import create_backbone


@pytest.fixture
def offline(monkeypatch, tmp_path: Path) -> Path:
    """An empty torch cache, and downloads that fail as they do without network."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))

    def no_network(url: str, dst: str, **_: object) -> None:
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    return tmp_path / "torch" / "hub" / "checkpoints"


def test_missing_weights_offline_name_the_file_the_url_and_both_ways(offline: Path) -> None:
    with pytest.raises(WsssError) as err:
        create_backbone("resnet50", pretrained=True)
    text = str(err.value)
    assert "resnet50-0676ba61.pth" in text and W.IMAGENET_URLS["resnet50"] in text
    assert str(offline) in text and "--weights PATH" in text and "Name or service" in text
    assert "\n" not in text


def test_weights_from_the_cache_a_file_or_a_folder(offline: Path, tmp_path: Path) -> None:
    reference = create_backbone("resnet50", pretrained=False)
    from torchvision.models import resnet50

    net = resnet50(weights=None)
    state = {k: torch.full_like(v, 0.5) if v.is_floating_point() else v
             for k, v in net.state_dict().items()}  # fmt: skip
    folder = tmp_path / "mine"
    folder.mkdir()
    torch.save(state, folder / "resnet50-0676ba61.pth")
    for given in (folder, folder / "resnet50-0676ba61.pth"):
        backbone = create_backbone("resnet50", pretrained=True, weights=given)
        assert torch.all(backbone.stages[0][0].weight == 0.5)
    with pytest.raises(WsssError, match="resnet50"):  # not in the cache yet
        create_backbone("resnet50", pretrained=True)
    offline.mkdir(parents=True, exist_ok=True)
    torch.save(state, offline / "resnet50-0676ba61.pth")
    assert torch.all(create_backbone("resnet50", pretrained=True).stages[0][0].weight == 0.5)
    assert not torch.all(reference.stages[0][0].weight == 0.5)


def test_a_named_file_that_is_not_there_is_an_error(offline: Path, tmp_path: Path) -> None:
    with pytest.raises(WsssError, match=r"missing\.pth: no ImageNet weights of vgg16 here"):
        W.require_weights("vgg16", tmp_path / "missing.pth")


def test_voc_run_offline_stops_before_writing(offline, tmp_path, monkeypatch, capsys) -> None:
    out = tmp_path / "voc"
    args = ["run", "--config", "voc", "--root", "/work/none", "--out", str(out)]
    assert run_wsss(args, monkeypatch) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "resnet50-0676ba61.pth" in err[0] and "--weights" in err[0], err
    assert not out.exists()
