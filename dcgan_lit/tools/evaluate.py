"""Scores a checkpoint's generator, or a folder of images, against a dataset: one FID table row.

``python -m dcgan_lit.tools.evaluate ckpt_path=<file.ckpt> dataset=catfaces`` or ``... fake_dir=<folder>``.

A conditional generator is scored overall (its classes drawn uniformly, against the whole set's statistics, as
an unconditional one) and, with ``per_class=true``, per class: each class's fakes against that class's images.
"""

from __future__ import annotations

import logging
import os
import time

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, open_dict

from dcgan_lit.api import pick_device
from dcgan_lit.data.images import decode_images, find_images
from dcgan_lit.errors import UserError
from dcgan_lit.metrics import MetricSuite, score_generator
from dcgan_lit.metrics.cost import check_fid_settings, resolve_counts
from dcgan_lit.metrics.features import extractor_from_config
from dcgan_lit.metrics.suite import batches
from dcgan_lit.progress import watch
from dcgan_lit.tools.app import load_networks, tool_main

log = logging.getLogger(__name__)

COLUMNS = (
    "source",
    "dataset",
    "real",
    "fake",
    "features",
    "fid",
    "kid_mean",
    "is_mean",
    "mifid",
    "reference",
    "real_seconds",
    "fake_seconds",
)


def fake_images(fake_dir: str, size: int, channels: int) -> torch.Tensor:
    """Every image under ``fake_dir`` as uint8, resized and cropped like the dataset's images."""
    files = find_images(os.path.expanduser(fake_dir))
    if not files:
        raise UserError(f"fake_dir={fake_dir}: no image files found; pass a folder of generated images")
    images, skipped = decode_images(files, size, channels)
    if skipped:
        log.warning("fake_dir=%s: skipped %d unreadable files", fake_dir, len(skipped))
    if images.size(0) < 2:
        raise UserError(f"fake_dir={fake_dir}: at least 2 readable images are needed for FID")
    return images


def evaluate(cfg: DictConfig) -> dict:
    """Computes the configured metrics and returns the result row (also printed)."""
    ckpt_path, fake_dir = cfg.get("ckpt_path"), cfg.get("fake_dir")
    if bool(ckpt_path) == bool(fake_dir):
        raise UserError("evaluate: pass exactly one of ckpt_path=<file.ckpt> or fake_dir=<folder of images>")
    fid = cfg.metrics.get("fid")
    if not fid:
        raise UserError("evaluate: metrics.fid is off (metrics=none); use metrics=default")
    check_fid_settings(fid)
    device = pick_device(cfg.device)
    num_fake, num_real = resolve_counts(fid.get("num_fake", "auto"), fid.get("num_real", "auto"), device)
    generator = None
    if ckpt_path:
        generator, _ = load_networks(ckpt_path, device, ema=cfg.ema)
        with open_dict(cfg):  # the reference set must match what the generator draws
            cfg.dataset.image_size, cfg.dataset.channels = generator.image_size, generator.channels
    with open_dict(cfg):
        cfg.dataset.batch_size = 1  # nothing is trained: any dataset size will do
    extractor = extractor_from_config(fid, cfg.paths.get("cache_dir"))
    num_classes = getattr(generator, "num_classes", 0)
    datamodule = instantiate(cfg.dataset, **({"conditional": True} if num_classes else {}))
    datamodule.check_source()
    if num_classes and datamodule.class_names() != generator.class_names:
        raise UserError(
            f"evaluate: the checkpoint's classes {generator.class_names} are not the dataset's "
            f"{datamodule.class_names()}; pick the same ones with dataset.classes=[...]"
        )
    datamodule.setup("fit")
    options = {name: cfg.metrics.get(name) for name in ("kid", "inception_score", "mifid")}
    suite = MetricSuite(extractor, options).to(device)
    batch_size = int(fid.get("batch_size", 100))

    start = time.perf_counter()
    cached = suite.prepare_reference(
        datamodule.train_set.images,
        datamodule.cache_key(),
        cfg.paths.cache_dir,
        num_real,
        batch_size,
    )
    reference_seconds = time.perf_counter() - start
    start = time.perf_counter()
    if generator is not None:
        results = score_generator(
            suite,
            generator,
            generator.latent_dim,
            num_fake,
            batch_size,
            device,
            int(fid.get("seed", 0)),
            num_classes=num_classes,
        )
    else:
        images = fake_images(fake_dir, datamodule.image_size, datamodule.channels)
        num_fake = images.size(0)
        suite.reset()
        chunks = batches(images, batch_size)
        for batch in watch(
            chunks, "FID fakes", -(-num_fake // batch_size), batch_size, "images", terminal=False
        ):
            suite.update(batch)
        results = suite.compute()
    fake_seconds = time.perf_counter() - start
    row = {
        "source": str(ckpt_path or fake_dir),
        "dataset": datamodule.name,
        "real": suite.reference.num,
        "fake": num_fake,
        "features": suite.extractor_description,
        **results,
        "reference": "cached" if cached else "computed",
        "real_seconds": round(reference_seconds, 3),  # real features; ~0 with cached statistics
        "fake_seconds": round(fake_seconds, 3),  # generating and scoring the fakes
    }
    print_row(row)
    if num_classes and cfg.get("per_class", True):
        row["fid_per_class"] = per_class_fid(
            cfg, generator, datamodule, extractor, num_fake, num_real, device
        )
    return row


def per_class_fid(
    cfg: DictConfig,
    generator: torch.nn.Module,
    datamodule,
    extractor: torch.nn.Module,
    num_fake: int,
    num_real: int | None,
    device: torch.device,
) -> dict[str, float]:
    """FID of each class: ``num_fake`` fakes of the class against the class's own (cached) reference statistics."""
    fid, names = cfg.metrics.fid, datamodule.class_names()
    batch_size, images, labels = (
        int(fid.get("batch_size", 100)),
        datamodule.train_set.images,
        datamodule.train_set.labels,
    )
    scores = {}
    for index, name in enumerate(names):
        suite = MetricSuite(extractor).to(device)  # a fresh real side per class
        key = f"{datamodule.cache_key()}/class={name}"
        suite.prepare_reference(images[labels == index], key, cfg.paths.cache_dir, num_real, batch_size)
        seed = int(fid.get("seed", 0))
        result = score_generator(
            suite, generator, generator.latent_dim, num_fake, batch_size, device, seed, len(names), index
        )
        scores[name] = result["fid"]
    print("| class | real | fake | fid |")
    print("| --- | --- | --- | --- |")
    for index, name in enumerate(names):
        print(f"| {name} | {int((labels == index).sum())} | {num_fake} | {scores[name]:.4f} |")
    return scores


def print_row(row: dict) -> None:
    """One Markdown table row (with its header) of the columns that have values."""
    columns = [c for c in COLUMNS if c in row] + [c for c in row if c not in COLUMNS]
    cells = [f"{row[c]:.4f}" if isinstance(row[c], float) else str(row[c]) for c in columns]
    print("| " + " | ".join(columns) + " |")
    print("|" + "|".join(" --- " for _ in columns) + "|")
    print("| " + " | ".join(cells) + " |")


main = tool_main("evaluate", evaluate)

if __name__ == "__main__":
    main()
