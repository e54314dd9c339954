import numpy as np
import pytest

from wsss.io.palette import VOC_PALETTE
from wsss.viz import cam_heatmap, make_grid, overlay_cam, overlay_labels


def test_heatmap_ends_and_monotone_red():
    h = cam_heatmap(np.linspace(0, 1, 7)[None, :])
    assert h[0, 0].tolist() == [0, 0, 128]
    assert h[0, -1].tolist() == [128, 0, 0]
    assert cam_heatmap(np.array([[np.nan, 2.0]]))[0, 1].tolist() == [128, 0, 0]


def test_overlay_labels_keeps_background():
    image = np.full((2, 2, 3), 100, np.uint8)
    label = np.array([[0, 1], [255, 0]])
    out = overlay_labels(image, label, alpha=1.0)
    assert out[0, 0].tolist() == [100, 100, 100]
    assert out[0, 1].tolist() == VOC_PALETTE[1].tolist()
    assert out[1, 0].tolist() == [162, 162, 146]  # half-way to (224,224,192)


def test_overlay_shape_check():
    with pytest.raises(ValueError):
        overlay_cam(np.zeros((2, 2, 3), np.uint8), np.zeros((3, 2)))


def test_grid_layout():
    a = np.zeros((10, 20, 3), np.uint8)
    g = make_grid([[a, a], [a]], height=10, pad=2)
    assert g.shape == (2 * 12 + 2, 2 * 20 + 3 * 2, 3)
    assert (g[2:12, 2:22] == 0).all() and (g[0:2] == 255).all()
    titled = make_grid([[a]], titles=["x"], height=10)
    assert titled.shape[0] == g.shape[0] - 12 + 14


def test_line_plot_is_an_image_that_depends_on_the_data() -> None:
    from wsss.viz.plot import line_plot

    a = line_plot([0.0, 0.5, 1.0], [10.0, 30.0, 20.0], xlabel="t", ylabel="mIoU")
    b = line_plot([0.0, 0.5, 1.0], [30.0, 10.0, 20.0], xlabel="t", ylabel="mIoU")
    assert a.dtype == np.uint8 and a.ndim == 3 and a.shape[2] == 3
    assert a.shape == b.shape and (a != b).any()


def test_sample_grid_titles_tell_the_ground_truth_network_apart():
    from wsss.viz.report_figures import column_title

    names = ["DeepLabV3+", "ES-CRF", "DeepLabV3+ (supervised, ground truth)",
             "colour-only (supervised, oracle labels)"]  # fmt: skip
    titles = [column_title(n) for n in names]
    assert titles == ["DeepLabV3+", "ES-CRF", "DeepLabV3+ (GT)", "colour-only"]
    assert len(set(titles)) == len(titles)
