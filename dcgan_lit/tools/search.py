"""Latent search (the "pegasus" use): sample many z, score G(z) by a criterion, keep the top k with their z's.

    python -m dcgan_lit.tools.search ckpt_path=last.ckpt num_samples=10000 top_k=16            # D's realism logit
    python -m dcgan_lit.tools.search ckpt_path=last.ckpt criterion=classifier \\
        classifier.target=my_pkg.Classifier classifier.weights=clf.pt classifier.classes=[7,2]
    python -m dcgan_lit.tools.search ckpt_path=last.ckpt z_path=projected.pt spread=0.5   # around given z's
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig

from dcgan_lit.checkpoint.load import load_module_weights
from dcgan_lit.errors import UserError
from dcgan_lit.model.networks import Generator
from dcgan_lit.model.sampling import generate, generate_batches
from dcgan_lit.tools.app import load_networks, progress, tool_main, wrote
from dcgan_lit.tools.drawing import labelled_grid, save_image
from dcgan_lit.tools.latent import class_labels, load_z, sample_z, save_z

Scorer = Callable[
    [torch.Tensor, torch.Tensor | None], torch.Tensor
]  # (images, class labels or None) -> scores
COMBINE = {
    "min": lambda p: p.min(1).values,  # every chosen class at once: the weakest one decides
    "mean": lambda p: p.mean(1),
    "product": lambda p: p.log().sum(1),  # log of the product: numerically safe ranking
}


def realism_scorer(discriminator: torch.nn.Module) -> Scorer:
    """Scores images by D's logit: higher is "more real" to the trained discriminator (a projection D: for the
    images' class)."""
    return lambda images, labels: discriminator(images, labels)


def build_classifier(cfg: DictConfig) -> torch.nn.Module:
    """The user's classifier, ``classifier.target(**classifier.kwargs)``; one clear line when it can't be built."""
    try:
        model = instantiate({"_target_": cfg.target, **cfg.kwargs})
    except InstantiationException as error:
        reason = str(error).strip().splitlines()[0]
        raise UserError(
            f"classifier.target={cfg.target} could not be built ({reason}); give an importable nn.Module "
            "class (module.Class, on PYTHONPATH) and its arguments as classifier.kwargs"
        ) from None
    if not isinstance(model, torch.nn.Module):
        raise UserError(
            f"classifier.target={cfg.target} made a {type(model).__name__}, not a torch nn.Module"
        )
    return model


def classifier_scorer(cfg: DictConfig, device: torch.device) -> Scorer:
    """Scores images by a user classifier's probabilities of ``classes``, combined by ``combine``."""
    if not cfg.target or not cfg.weights:
        raise UserError(
            "criterion=classifier needs classifier.target=<importable nn.Module class> and "
            "classifier.weights=<state-dict file>"
        )
    if not cfg.classes:
        raise UserError("criterion=classifier needs classifier.classes=[...], the class indices to look for")
    if cfg.combine not in COMBINE:
        raise UserError(f"classifier.combine={cfg.combine!r} is unknown; use one of {sorted(COMBINE)}")
    model = load_module_weights(build_classifier(cfg), cfg.weights, cfg.prefix or "").to(device).eval()
    classes, combine, size = list(cfg.classes), COMBINE[cfg.combine], cfg.image_size

    def score(images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if size and size != images.shape[-1]:
            images = F.interpolate(images, size=(size, size), mode="bilinear", antialias=True)
        probabilities = model(images).softmax(1)
        if max(classes) >= probabilities.size(1):
            raise UserError(
                f"classifier.classes={classes}: the classifier has {probabilities.size(1)} classes"
            )
        return combine(probabilities[:, classes])

    return score


def candidates(generator: Generator, cfg: DictConfig) -> torch.Tensor:
    """The z's to score: ``num_samples`` seeded ones, or (``z_path``) the file's z's, then z's around them.

    Around a file: candidate i is row i % rows plus ``spread`` times seeded N(0, I) noise, except that the
    first pass over the rows is the rows themselves, so an unchanged z competes too.
    """
    noise = sample_z(generator, cfg.num_samples, cfg.seed)
    if not cfg.z_path:
        return noise
    centres = load_z(cfg.z_path, generator.latent_dim, cfg.indices)
    index = torch.arange(cfg.num_samples)
    noise[index < len(centres)] = 0
    return centres[index % len(centres)] + float(cfg.spread) * noise


@torch.no_grad()
def score_samples(
    generator: Generator,
    scorer: Scorer,
    z: torch.Tensor,
    batch_size: int,
    labels: torch.Tensor | None = None,
) -> torch.Tensor:
    """The criterion's score of G(z) (a conditional G: of class ``labels``) for every z, in batches."""
    batches = generate_batches(generator, z, batch_size, progress, "Scoring", labels=labels)
    label_chunks = labels.split(batch_size) if labels is not None else [None] * len(z.split(batch_size))
    scores = [
        scorer(images, chunk.to(images.device) if chunk is not None else None).float().cpu()
        for images, chunk in zip(batches, label_chunks, strict=True)
    ]
    return torch.cat(scores)


def run(cfg: DictConfig) -> dict:
    """Writes the top-k grid (captioned with scores) and top_k.pt with their z's and scores."""
    if cfg.criterion not in ("realism", "classifier"):
        raise UserError(f"criterion={cfg.criterion!r} is unknown; use realism or classifier")
    if not 1 <= cfg.top_k <= cfg.num_samples:
        raise UserError(f"top_k={cfg.top_k} must be between 1 and num_samples={cfg.num_samples}")
    realism = cfg.criterion == "realism"
    generator, discriminator = load_networks(cfg.ckpt_path, cfg.device, discriminator=realism)
    device = next(generator.parameters()).device
    scorer = realism_scorer(discriminator) if realism else classifier_scorer(cfg.classifier, device)
    z = candidates(generator, cfg)
    labels = class_labels(generator, cfg.get("class"), len(z))
    scores = score_samples(generator, scorer, z, cfg.batch_size, labels)
    best = scores.topk(cfg.top_k).indices
    images = generate(generator, z[best], cfg.batch_size, labels=labels[best] if labels is not None else None)
    out = Path(cfg.out_dir)
    captions = [f"{i}:{s:.2f}" for i, s in zip(best.tolist(), scores[best].tolist(), strict=True)]
    grid = save_image(labelled_grid(images, min(cfg.top_k, 8), captions), out / "top_k.png")
    wrote(grid, f"the top {cfg.top_k} of {cfg.num_samples} samples by {cfg.criterion} (sample:score)")
    classes = {"labels": labels[best]} if labels is not None else {}  # a conditional G: each z's class
    z_path = save_z(out / "top_k.pt", z[best], scores=scores[best], sample_index=best, **classes)
    wrote(z_path, "their z's, best first (interpolate/walk z_path=...)")
    return {"z": z[best], "scores": scores[best], "indices": best, "all_scores": scores}


main = tool_main("search", run)

if __name__ == "__main__":
    main()
