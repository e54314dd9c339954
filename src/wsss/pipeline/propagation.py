"""Pipeline stages that propagate seeds into complete pseudo labels (SPEC sections 3-4): the
affinity networks (IRNet boundary net, AffinityNet) and their random walks."""

from __future__ import annotations

from typing import Any

import numpy as np

from wsss.engine import barrier
from wsss.pipeline.layout import (
    affinity_methods,
    affinity_run,
    gcn_dir,
    gcn_variants,
    pseudo_cam_dir,
    pseudo_split,
    rw_dir,
)
from wsss.pipeline.recipes import affinity_recipe


def stage_train_affinity(ctx: Any) -> dict[str, Any]:
    """Train each configured affinity network on the seeds of the pseudo-label split (IRNet:
    ``train_aug`` on VOC), on top of the trained CAM backbone (``config["affinity"]``)."""
    from wsss.affinity.train import train

    runs = {}
    for method in affinity_methods(ctx):
        config = affinity_recipe(ctx, method)
        final = train(config, affinity_run(ctx, method), dataset=ctx.dataset(pseudo_split(ctx)),
                      device=ctx.config["device"], progress=ctx.progress)  # fmt: skip
        runs[method] = str(final)
    return runs


def stage_random_walk(ctx: Any) -> dict[str, Any]:
    """Random-walk propagation of the CAMs with each trained affinity network."""
    from wsss.propagation.infer import create_propagator, propagate

    dataset = ctx.dataset(pseudo_split(ctx))
    written = {}
    for method in affinity_methods(ctx):
        propagator = create_propagator(
            "rw", affinity=affinity_run(ctx, method), device=ctx.config["device"]
        )
        out = rw_dir(ctx, method)
        propagate(dataset, pseudo_cam_dir(ctx), out, propagator, progress=ctx.progress)
        written[method] = str(out)
    barrier()
    return written


def _gcn_propagator(ctx: Any, variant: dict[str, Any]) -> Any:
    """The GCN propagator of one configured variant; ``features: imagenet`` takes the node
    features from the stages of Lite0's ImageNet backbone (no checkpoint)."""
    from wsss.propagation.infer import create_propagator

    method, features = variant.get("affinity"), variant.get("features")
    extra: dict[str, Any] = {}
    if features == "imagenet":
        from wsss.cam.imagenet import DEFAULT_OUTPUT_STRIDE, imagenet_backbone
        from wsss.engine.training import resolve_device

        stride = int(ctx.config.get("cam", {}).get("output_stride") or DEFAULT_OUTPUT_STRIDE)
        device = resolve_device(ctx.config["device"])
        features = "backbone"
        extra["backbone"] = imagenet_backbone(output_stride=stride, device=device)
    return create_propagator(
        "gcn",
        graph=variant.get("graph", "sparse"),
        features=features,
        affinity=None if method is None else affinity_run(ctx, method),
        crf=True,
        seed=int(ctx.config["seed"]),
        device=ctx.config["device"],
        **extra,
    )


def stage_gcn(ctx: Any) -> dict[str, Any]:
    """WSGCN: a GCN trained per image on the WSGCN seeds over the graph of each configured
    variant (``config["gcn"]["variants"]``: ``name``, ``label``, ``graph`` sparse|dense|phi,
    ``affinity``: the method whose run gives the graph and the node features, ``features``:
    colour|backbone|affinity|imagenet, default from the runs). Each GCN is trained once and its
    output written twice: argmax of the upsampled probabilities, and after the dense CRF (the
    paper's table 2 rows "+dCRF")."""
    from wsss.engine import dist_info, pending, shard
    from wsss.engine.progress import track
    from wsss.gcn.train import train_gcn
    from wsss.io.palette import write_label_png
    from wsss.seeds.infer import read_cam_for_image

    cfg = ctx.config["gcn"]
    batch = int(cfg.get("batch_size", 16))
    dataset = ctx.dataset(pseudo_split(ctx))
    info = dist_info()
    mine = shard(dataset.ids, info.rank, info.world)
    written = {}
    for variant in gcn_variants(ctx):
        propagator = _gcn_propagator(ctx, variant)
        outs = {crf: gcn_dir(ctx, variant, crf=crf) for crf in (False, True)}
        missing: set[str] = set()
        for folder in outs.values():
            missing.update(pending(mine, lambda i, d=folder: d / f"{i}.png"))
        todo = [i for i in mine if i in missing]
        groups = [todo[k : k + batch] for k in range(0, len(todo), batch)]
        bar = track(groups, description=f"GCN {variant['name']} ({batch} images a step)",
                    enabled=ctx.progress)  # fmt: skip
        for group in bar:
            images = [dataset.load_image(i) for i in group]
            cams = [read_cam_for_image(pseudo_cam_dir(ctx) / f"{i}.npz", size=im.shape[:2],
                                       num_classes=dataset.classes.num_classes,
                                       full_resolution=False)
                    for i, im in zip(group, images, strict=True)]  # fmt: skip
            with_classes = [k for k, cam in enumerate(cams) if len(cam.keys)]
            problems = [propagator.problem(images[k], cams[k], image_id=group[k])
                        for k in with_classes]  # fmt: skip
            probs = dict(zip(with_classes, train_gcn(problems, propagator.settings), strict=True))
            for k, image_id in enumerate(group):
                for crf, out in outs.items():
                    label = (propagator.finish(images[k], cams[k], probs[k], crf=crf)
                             if k in probs else np.zeros(images[k].shape[:2], np.uint8))  # fmt: skip
                    write_label_png(out / f"{image_id}.png", label)
        written.update({str(out): len(todo) for out in outs.values()})
    barrier()
    return written


def stage_ablation_gcn(ctx: Any) -> dict[str, Any]:
    """WSGCN table 2 on the first ``config["ablation"]["gcn_images"]`` images (``wsss ablate
    gcn``); skipped when that is 0 or no IRNet affinity network was trained."""
    from wsss.ablation import ablate_gcn

    images = int(ctx.config.get("ablation", {}).get("gcn_images", 0))
    if images <= 0 or "irn" not in affinity_methods(ctx):
        return {"skipped": True}
    batch = int(ctx.config.get("gcn", {}).get("batch_size", 16))
    result = ablate_gcn(ctx.path, limit=images, batch_size=batch, progress=ctx.progress)
    return {"table": str(ctx.path / "ablation" / "gcn.md"), "images": result["images"]}
