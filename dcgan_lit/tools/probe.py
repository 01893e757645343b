"""The paper's representation-learning probe (section 5.1): a linear classifier on D's features.

Every convolutional layer of D is max-pooled to 4x4 and the results are concatenated (the paper's 28,672
features for its ImageNet D); an L2-SVM (or logistic regression) is trained on ``labels_per_class`` labels,
C is chosen on a validation split, and test accuracy is reported over label resamples, beside the same probe
on a randomly initialised D of the same shape.

    python -m dcgan_lit.tools.probe ckpt_path=last.ckpt labelled=mnist labels_per_class=100
    python -m dcgan_lit.tools.probe ckpt_path=last.ckpt labelled=imagefolder path=~/labelled   # one subfolder per class
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from torch import nn

from dcgan_lit.data.labelled import Split, fit, imagefolder_splits, torchvision_splits
from dcgan_lit.errors import UserError
from dcgan_lit.model.networks import Discriminator, reinitialised
from dcgan_lit.pixels import from_uint8
from dcgan_lit.tools.app import console, load_networks, progress, tool_main, wrote


@torch.no_grad()
def discriminator_features(
    discriminator: Discriminator, images: torch.Tensor, batch_size: int = 256
) -> torch.Tensor:
    """(N, F): each conv block's activations of D max-pooled to 4x4, flattened and concatenated."""
    device = next(discriminator.parameters()).device
    blocks = [i for i, layer in enumerate(discriminator.features) if isinstance(layer, nn.LeakyReLU)]
    chunks = images.split(batch_size)
    features = []
    for chunk in progress(chunks, "D features", len(chunks)):
        x, pooled = from_uint8(chunk).to(device), []
        for index, layer in enumerate(discriminator.features):
            x = layer(x)
            if index in blocks:
                pooled.append(F.adaptive_max_pool2d(x, 4).flatten(1))
        features.append(torch.cat(pooled, 1).float().cpu())
    return torch.cat(features)


def classifier_loss(kind: str, scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean squared hinge, one-vs-rest (L2-SVM), or cross-entropy (logistic regression)."""
    if kind == "logistic":
        return F.cross_entropy(scores, labels)
    signs = F.one_hot(labels, scores.size(1)).float() * 2 - 1
    return F.relu(1 - signs * scores).pow(2).sum(1).mean()


def train_linear(
    features: torch.Tensor, labels: torch.Tensor, classes: int, C: float, kind: str
) -> nn.Linear:
    """A linear classifier minimising loss + ||W||^2 / (2 C n), full-batch L-BFGS (deterministic, no lr)."""
    torch.manual_seed(0)
    model = nn.Linear(features.size(1), classes)
    nn.init.zeros_(model.weight)
    optimizer = torch.optim.LBFGS(
        model.parameters(), max_iter=100, history_size=10, line_search_fn="strong_wolfe"
    )
    penalty = 1 / (2 * C * len(labels))

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = classifier_loss(kind, model(features), labels) + penalty * model.weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return model


@torch.no_grad()
def accuracy(model: nn.Linear, features: torch.Tensor, labels: torch.Tensor) -> float:
    """The share of ``features`` whose highest score is their label."""
    return (model(features).argmax(1) == labels).float().mean().item()


def pick_labelled(
    labels: torch.Tensor, per_class: int, val_per_class: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded per-class picks: ``per_class`` training and ``val_per_class`` validation indices of each class."""
    generator = torch.Generator().manual_seed(seed)
    train, val = [], []
    for label in labels.unique():
        members = (labels == label).nonzero().flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        if len(members) < per_class + val_per_class:
            raise UserError(
                f"class {label.item()} has {len(members)} training images, fewer than labels_per_class + "
                f"val_per_class = {per_class + val_per_class}; lower them"
            )
        train.append(members[:per_class])
        val.append(members[per_class : per_class + val_per_class])
    return torch.cat(train), torch.cat(val)


def probe_once(
    train: Split, val: Split, test: Split, classes: int, grid: list[float], kind: str
) -> tuple[float, float]:
    """(test accuracy, chosen C) of the classifier whose C did best on the validation split."""
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = train, val, test
    mean, std = x_train.mean(0), x_train.std(0) + 1e-6  # standardised on the labelled examples only
    x_train, x_val, x_test = ((x - mean) / std for x in (x_train, x_val, x_test))
    models = {C: train_linear(x_train, y_train, classes, C, kind) for C in grid}
    best = max(grid, key=lambda C: accuracy(models[C], x_val, y_val))
    return accuracy(models[best], x_test, y_test), best


def load_splits(cfg: DictConfig, image_size: int, channels: int) -> tuple[Split, Split]:
    """(train, test) splits of the probe's labelled dataset (uint8, not yet at D's size for torchvision sets)."""
    if cfg.labelled in ("mnist", "cifar10"):
        return torchvision_splits(cfg.labelled, cfg.root)
    if cfg.labelled == "imagefolder":
        if not cfg.path:
            raise UserError("labelled=imagefolder needs path=<folder with one subfolder per class>")
        return imagefolder_splits(cfg.path, image_size, channels, cfg.test_fraction, cfg.seed)
    raise UserError(
        f"labelled={cfg.labelled!r} is not supported by the probe; use mnist, cifar10 or imagefolder"
    )


def summary(runs: list[tuple[float, float]]) -> dict:
    """Mean, std, and each resample's accuracy and chosen C, from (accuracy, C) pairs."""
    accuracies = [a for a, _ in runs]
    spread = statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0
    return {
        "mean": statistics.fmean(accuracies),
        "std": spread,
        "accuracies": accuracies,
        "C": [c for _, c in runs],
    }


def run(cfg: DictConfig) -> dict:
    """Probes the trained and a random D over ``resamples`` label draws; prints a table row and writes JSON."""
    if cfg.classifier not in ("svm", "logistic"):
        raise UserError(f"classifier={cfg.classifier!r} is unknown; use svm (L2-SVM) or logistic")
    _, discriminator = load_networks(cfg.ckpt_path, cfg.device, generator=False, discriminator=True)
    (train_images, train_labels), (test_images, test_labels) = load_splits(
        cfg, discriminator.image_size, discriminator.channels
    )
    test = torch.randperm(len(test_labels), generator=torch.Generator().manual_seed(cfg.seed))[: cfg.max_test]
    picks = [
        pick_labelled(train_labels, cfg.labels_per_class, cfg.val_per_class, cfg.seed + r)
        for r in range(cfg.resamples)
    ]
    needed = torch.cat([torch.cat(p) for p in picks]).unique()  # only these training images need features
    position = torch.full((len(train_labels),), -1, dtype=torch.long)
    position[needed] = torch.arange(len(needed))
    classes = int(train_labels.max()) + 1
    size, channels = discriminator.image_size, discriminator.channels
    pool_images, test_subset = (
        fit(train_images[needed], size, channels),
        fit(test_images[test], size, channels),
    )
    results = {}
    for name, network in (
        ("trained", discriminator),
        ("random", reinitialised(discriminator, cfg.seed).eval()),
    ):
        x_pool = discriminator_features(network, pool_images, cfg.batch_size)
        x_test = discriminator_features(network, test_subset, cfg.batch_size)
        runs = [
            probe_once(
                (x_pool[position[t]], train_labels[t]),
                (x_pool[position[v]], train_labels[v]),
                (x_test, test_labels[test]),
                classes,
                list(cfg.C),
                cfg.classifier,
            )
            for t, v in picks
        ]
        results[name] = summary(runs)
    report = {
        "labelled": cfg.labelled,
        "classes": classes,
        "labels_per_class": cfg.labels_per_class,
        "test_images": len(test),
        "feature_dim": x_test.size(1),
        "classifier": cfg.classifier,
        **results,
    }
    trained, random = results["trained"], results["random"]
    console.print("| labelled set | labels/class | features | trained D | random D |", highlight=False)
    console.print("| --- | --- | --- | --- | --- |", highlight=False)
    console.print(
        f"| {cfg.labelled} | {cfg.labels_per_class} | {x_test.size(1)} | "
        f"{100 * trained['mean']:.1f} ± {100 * trained['std']:.1f}% | "
        f"{100 * random['mean']:.1f} ± {100 * random['std']:.1f}% |",
        highlight=False,
    )
    out = Path(cfg.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    wrote(out, "the probe's accuracies")
    return report


main = tool_main("probe", run)

if __name__ == "__main__":
    main()
