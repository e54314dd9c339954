"""Training samples of the affinity networks: the image and its seed, augmented together."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wsss.affinity.pairs import feature_size
from wsss.data.base import Sample, SegmentationDataset
from wsss.data.transforms import TrainTransform
from wsss.engine.samples import SeededSamples
from wsss.errors import WsssError
from wsss.io.images import read_label_png
from wsss.seeds.resize import upsample_labels

__all__ = ["SeededAffinitySamples", "read_seed"]


class SeededAffinitySamples(SeededSamples):
    """Sample ``(epoch, index)``: the image and its seed, augmented with the sample's seed.

    Returns ``{"image": (3, crop, crop), "mask": (crop, crop) int64 seed (255 unlabelled), ...}``.
    """

    def __init__(self, dataset: SegmentationDataset, seeds: Path, transform: TrainTransform,
                 seed: int) -> None:  # fmt: skip
        super().__init__(dataset, seed)
        self.seeds, self.transform = seeds, transform

    def load(self, index: int) -> Sample:
        image_id = self.dataset.ids[index]
        sample = self.dataset.load(image_id)
        sample.mask = read_seed(self.seeds / f"{image_id}.png", sample.image.shape[:2],
                                self.dataset.classes.num_classes)  # fmt: skip
        return sample

    def augment(self, data: Sample) -> dict[str, Any]:
        return self.transform(data)


def read_seed(path: Path, size: tuple[int, int], num_classes: int) -> Any:
    """A seed PNG at the image size (stride-4 seeds are upsampled, nearest).

    Raises:
        WsssError: missing file, ids out of range, or a size that is neither the image's nor
            its stride-4 size.
    """
    if not path.is_file():
        raise WsssError("missing seed file", path, hint="run `wsss seeds` on this split first")
    label = read_label_png(path, num_classes=num_classes)
    small = feature_size(size, 4)
    if tuple(label.shape) == tuple(size):
        return label
    if tuple(label.shape) == small:
        return upsample_labels(label, size)
    raise WsssError(f"seed is {label.shape[0]}x{label.shape[1]}, the image {size[0]}x{size[1]} "
                    f"(or {small[0]}x{small[1]} at stride 4)", path)  # fmt: skip
