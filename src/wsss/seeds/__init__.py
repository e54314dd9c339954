"""Partial pseudo labels ("seeds") from CAMs: IRNet's, WSGCN's and Group-WSSS's schemes (SPEC
section 2).

A seed is a label map with class ids where the CAMs are confident, 0 for confident background and
255 for unlabelled pixels. IRNet's and Group-WSSS's seeds are at the image size; WSGCN's at the
stride-4 CAM size.
"""

from wsss.seeds.group import GROUP_VARIANTS, GroupSeeds, group_seeds
from wsss.seeds.infer import CONFIG_FILE, image_seeds, make_seeds, read_cam_for_image
from wsss.seeds.irnet import IrnetSeeds, confident_labels, irnet_seeds, merge_confident
from wsss.seeds.registry import SEED_METHODS, Seeder, create_seeder, seeder_options
from wsss.seeds.resize import cam_size, downscale_image, upsample_labels
from wsss.seeds.wsgcn import (
    VARIANTS,
    WsgcnSeeds,
    background_score,
    combine_confident,
    refine_scores,
    top_fraction_mask,
    wsgcn_seeds,
)

__all__ = [
    "CONFIG_FILE",
    "GROUP_VARIANTS",
    "SEED_METHODS",
    "VARIANTS",
    "GroupSeeds",
    "IrnetSeeds",
    "Seeder",
    "WsgcnSeeds",
    "background_score",
    "cam_size",
    "combine_confident",
    "confident_labels",
    "create_seeder",
    "downscale_image",
    "group_seeds",
    "image_seeds",
    "irnet_seeds",
    "make_seeds",
    "merge_confident",
    "read_cam_for_image",
    "refine_scores",
    "seeder_options",
    "top_fraction_mask",
    "upsample_labels",
    "wsgcn_seeds",
]
