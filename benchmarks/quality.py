"""Sample quality next to the literature: real FID against iterations, on CIFAR-10, for several training recipes.

    python -m benchmarks.quality                          # make quality: the CPU budget of conf/benchmarks/quality.yaml
    python -m benchmarks.quality seeds=[0] rows=[paper,best] iterations=1000 evaluate_every=500
    python -m benchmarks.quality subset=1000 rows=[paper,small_data]   # small data: FID vs the full set and the subset

Every row trains at the same image size, batch, iterations and seeds, on the same images:
  classic     the PyTorch DCGAN example's loop (benchmarks/classic.py: ImageFolder decoding, D then G);
  <recipe>    dcgan-lit's real training path (conf/train.yaml + the recipe's overrides, Trainer.fit).
Every ``evaluate_every`` iterations each run is saved (so the benchmark resumes where it stopped; a recipe row
stopped by SIGTERM is also saved where it stopped, and the process exits 143), its
generator scored (FID, and IS when the Inception weights have the classifier) against the training set's
cached statistics, and a sample grid written; ``final_fakes=N`` scores the last iteration again with N fakes
(``fid_final``: less of FID's small-sample bias; on finished runs a rerun only scores), and ``best_fakes=N`` the
best point again (``fid_best``, from the ``generator_best.pt`` kept of it). Results: quality.json
and quality.md (the protocol in the table's header) and fid.png (FID against iterations, one line per row and
seed) in ``out_dir``.
"""

from __future__ import annotations

import copy
import json
import logging
import time
from pathlib import Path

import hydra
import lightning as L
import torch
from hydra import compose
from hydra.errors import HydraException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from benchmarks import classic
from benchmarks.gpu_parts import assembly_line
from benchmarks.quality_results import (
    check_resumable,
    load_results,
    markdown_table,
    point_key,
    write_results,
    write_text,
)
from dcgan_lit.api import load_generator, pick_device, save_grid
from dcgan_lit.callbacks import Checkpoint
from dcgan_lit.checkpoint.io import atomic_torch_save, read_weights_only
from dcgan_lit.checkpoint.load import save_generator
from dcgan_lit.data.datamodule import subset_indices
from dcgan_lit.data.images import find_images
from dcgan_lit.errors import UserError, exit_on_user_error
from dcgan_lit.metrics import MetricSuite, score_generator
from dcgan_lit.metrics.cost import resolve_counts
from dcgan_lit.metrics.features import extractor_from_config
from dcgan_lit.metrics.reference import real_subset
from dcgan_lit.model.diffaugment import AdaptiveAugment
from dcgan_lit.model.module import DCGAN
from dcgan_lit.model.networks import count_parameters
from dcgan_lit.model.sampling import eval_mode, generate, sampling_generator
from dcgan_lit.pixels import from_uint8
from dcgan_lit.run.config import validate
from dcgan_lit.run.fit import accelerator_choice, build_datamodule, build_model, build_trainer
from dcgan_lit.run.instantiate import instantiate_callbacks

log = logging.getLogger(__name__)

CLASSIC = "classic"
GAP_IMAGES = 1000  # training images D's gap is measured on at every point


# --------------------------------------------------------------------------------------------------
# the runs: one per (row, seed), each trained in stages of `evaluate_every` iterations
# --------------------------------------------------------------------------------------------------
class ClassicRun:
    """The example's loop, resumable: its networks, optimizers and RNG state saved after every stage."""

    def __init__(self, cfg: DictConfig, seed: int, folder: Path, device: torch.device) -> None:
        self.cfg, self.seed, self.folder, self.device = cfg, seed, folder, device
        torch.manual_seed(seed)
        self.example = classic.ClassicDCGAN(cfg.image_size, device)
        self.iteration = 0
        indices = None
        if cfg.subset:
            count = len(find_images(Path(cfg.data_path).expanduser()))
            indices = subset_indices(count, cfg.subset, cfg.subset_seed).tolist()  # the datamodule's rule
        self.dataset = classic.image_folder(cfg.data_path, cfg.image_size, indices)

    @property
    def state_file(self) -> Path:
        return self.folder / "classic.pt"

    def resume(self) -> None:
        if self.state_file.is_file():
            state = read_weights_only(self.state_file)
            self.example.load_state_dict(state["example"])
            self.iteration = int(state["iteration"])
            torch.set_rng_state(state["torch_rng"])

    def train_until(self, iteration: int) -> None:
        """Trains to ``iteration`` and saves there; ``self.iteration`` is always the saved state's (a stop
        mid-stage resumes from the stage's start)."""
        done, epoch = self.iteration, 0
        while done < iteration:
            # a new shuffled order per epoch (and per resumed stage), seeded by the run's seed and position
            order_seed = self.seed * 1_000_003 + done + epoch
            for data, _ in classic.loader(self.dataset, self.cfg.batch_size, self.cfg.workers, order_seed):
                self.example.step(data)
                done += 1
                if done >= iteration:
                    break
            epoch += 1
        atomic_torch_save(
            {"example": self.example.state_dict(), "iteration": done, "torch_rng": torch.get_rng_state()},
            self.state_file,
        )
        self.iteration = done

    @property
    def generator(self) -> torch.nn.Module:
        return self.example.netG

    @property
    def networks(self) -> tuple[torch.nn.Module, torch.nn.Module] | None:
        """The G and D being trained (for :func:`d_gap`)."""
        return self.example.netG, self.example.netD

    augment = augment_p = None  # the PyTorch example augments nothing

    @property
    def parameters(self) -> dict[str, int]:
        return {
            "params_g": count_parameters(self.example.netG),
            "params_d": count_parameters(self.example.netD),
        }

    @property
    def batch_size(self) -> int:
        return int(self.cfg.batch_size)


class RecipeRun:
    """dcgan-lit's training path for one recipe: conf/train.yaml with the recipe's overrides, Trainer.fit
    resumed from the previous stage's checkpoint (model, optimizers, data order and RNG states)."""

    def __init__(self, cfg: DictConfig, recipe: list[str], seed: int, folder: Path, device: torch.device):
        self.cfg, self.seed, self.folder, self.device = cfg, seed, folder, device
        self.run_cfg = recipe_config(cfg, recipe, seed, folder, device)
        validate(self.run_cfg)  # a bad recipe is one line now, not after the other rows trained
        self.model: DCGAN = build_model(self.run_cfg, build_datamodule(self.run_cfg))
        self.iteration = 0

    @property
    def state_file(self) -> Path:  # the last.ckpt that train_until's Checkpoint writes
        return self.folder / f"{Checkpoint.CHECKPOINT_NAME_LAST}{Checkpoint.FILE_EXTENSION}"

    def resume(self) -> None:
        if self.state_file.is_file():
            state = read_weights_only(self.state_file)
            self.model.load_state_dict(state["state_dict"])
            self.iteration = int(state["global_step"]) // self.model.optimizer_steps_per_iteration

    def train_until(self, iteration: int) -> None:
        L.seed_everything(self.seed, workers=True, verbose=False)  # a resumed stage restores its own states
        datamodule = build_datamodule(self.run_cfg)  # (images, labels) for a conditional recipe
        self.model = build_model(self.run_cfg, datamodule)
        # this run's state is a Checkpoint's last.ckpt: written when the stage ends, and where training stopped
        # on SIGTERM (Checkpoint.on_exception), so the same command goes on from there; the recipe's callbacks
        # (none, unless its overrides add some) come first
        state = Checkpoint(dirpath=str(self.folder), save_last=True, save_top_k=0)
        trainer = build_trainer(
            self.run_cfg,
            self.model,
            [*instantiate_callbacks(self.run_cfg.get("callbacks")), state],
            max_iterations=iteration,
            enable_checkpointing=True,
            enable_progress_bar=False,
            enable_model_summary=False,
            max_epochs=-1,
        )
        resume = self.state_file if self.state_file.is_file() else None
        try:
            trainer.fit(self.model, datamodule=datamodule, ckpt_path=resume)
        finally:  # the iteration last.ckpt now holds: the stage's end, or where SIGTERM stopped it
            if state.last_good is not None:
                self.iteration = state.last_good[1]

    @property
    def generator(self) -> torch.nn.Module:
        return sampling_generator(self.model)  # the EMA generator when the recipe keeps one

    @property
    def networks(self) -> tuple[torch.nn.Module, torch.nn.Module] | None:
        """The G and D being trained (for :func:`d_gap`); None for a conditional model (D takes classes)."""
        return None if self.model.hparams.conditional else (self.model.generator, self.model.discriminator)

    @property
    def augment(self) -> torch.nn.Module | None:
        """What D's step applies to every image it sees (DiffAugment, adaptive or not); None when nothing."""
        return self.model.augment if self.model.augment.policy else None

    @property
    def augment_p(self) -> float | None:
        """The adaptive augmentation's probability now (None for a recipe without one)."""
        augment = self.model.augment
        return float(augment.p) if isinstance(augment, AdaptiveAugment) else None

    @property
    def parameters(self) -> dict[str, int]:
        counts = self.model.parameter_counts()
        return {"params_g": counts["params/generator"], "params_d": counts["params/discriminator"]}

    @property
    def batch_size(self) -> int:
        return int(self.run_cfg.dataset.batch_size)  # the benchmark's, unless the recipe sets its own


def recipe_config(cfg: DictConfig, recipe: list[str], seed: int, folder: Path, device: torch.device):
    """conf/train.yaml for one recipe row: the benchmark's data, size, batch and seed, then the recipe."""
    overrides = [
        f"model=dcgan{cfg.image_size}",
        "dataset=imagefolder",
        f"dataset.path={cfg.data_path}",
        f"dataset.batch_size={cfg.batch_size}",
        f"dataset.subset={cfg.subset if cfg.subset else 'null'}",
        f"dataset.subset_seed={cfg.subset_seed}",
        "dataset.hflip=false",  # as the classic loop; a recipe may switch it on
        f"seed={seed}",
        "logger=none",
        "callbacks=none",
        "metrics=none",  # scored here, at the same points for every row
        f"paths.output_dir={folder}",
        f"paths.cache_dir={cfg.paths.cache_dir}",
        f"accelerator={accelerator_choice(device)}",
        *cfg.train_overrides,
        *recipe,
    ]
    return compose(config_name="train", overrides=overrides)


# --------------------------------------------------------------------------------------------------
# scoring
# --------------------------------------------------------------------------------------------------
class Scorer:
    """FID (and IS when available) of a generator against the training set's cached statistics, and, with a
    ``subset``, also against the subset's own statistics (a generator that memorised scores well there)."""

    def __init__(self, cfg: DictConfig, device: torch.device) -> None:
        fid = cfg.metrics.fid
        self.num_fake, self.num_real = resolve_counts(fid.num_fake, fid.num_real, device)
        self.batch_size, self.seed, self.device = int(fid.batch_size), int(fid.seed), device
        extractor = extractor_from_config(fid, cfg.paths.cache_dir)
        options = {"inception_score": cfg.metrics.inception_score} if extractor_has_logits(extractor) else {}
        self.suites = {"full": MetricSuite(extractor, options).to(device)}
        datamodule = instantiate(recipe_config(cfg, [], 0, Path(cfg.out_dir), device).dataset, subset=None)
        datamodule.setup("fit")
        images, key = datamodule.train_set.images, datamodule.cache_key()
        self.suites["full"].prepare_reference(
            images, key, cfg.paths.cache_dir, self.num_real, self.batch_size
        )
        self.num_real_used = self.suites["full"].reference.num
        trained_on = images
        if cfg.subset:
            self.suites["subset"] = MetricSuite(extractor).to(device)
            trained_on = images[subset_indices(images.size(0), cfg.subset, cfg.subset_seed)]
            self.suites["subset"].prepare_reference(
                trained_on, f"{key}-subset{cfg.subset}-seed{cfg.subset_seed}", cfg.paths.cache_dir, None
            )
        # D's gap is measured on the images it trains on: the subset, or a fixed 1,000 of the set
        self.gap_images = trained_on[real_subset(trained_on.size(0), GAP_IMAGES)]
        self.description = self.suites["full"].extractor_description

    def score(self, generator: torch.nn.Module, num_fake: int | None = None) -> dict[str, float]:
        """The metrics of ``num_fake`` fakes (default: the protocol's ``metrics.fid.num_fake``); with a subset,
        the same fakes' FID against the subset's statistics too (``fid_subset``)."""
        full = self.suites["full"]
        with eval_mode(generator):
            row = score_generator(
                full,
                generator,
                generator.latent_dim,
                num_fake or self.num_fake,
                self.batch_size,
                self.device,
                self.seed,
                num_classes=getattr(generator, "num_classes", 0),  # conditional: classes drawn uniformly
            )
        if "subset" in self.suites:
            row["fid_subset"] = full.fid_against(self.suites["subset"].reference)
        return row


@torch.no_grad()
def d_gap(
    networks: tuple[torch.nn.Module, torch.nn.Module],
    real: torch.Tensor,
    batch_size: int,
    device,
    augment: torch.nn.Module | None = None,
) -> float:
    """Mean D(x) - D(G(z)) over the training images ``real`` (uint8) and as many fakes, as training sees them
    (both networks in training mode, batches of ``batch_size``, on copies so that no BatchNorm statistics move),
    near 1 when D has memorised the set (docs/small_data.md). With the run's ``augment``, both sides pass through
    it first, as in D's step: the divergence guard's ``health/d_gap`` (its random draws seeded, the caller's
    random state untouched)."""
    generator, discriminator = (copy.deepcopy(net).to(device).train() for net in networks)
    seen = copy.deepcopy(augment).to(device) if augment is not None else torch.nn.Identity()
    noise, device = torch.Generator().manual_seed(0), torch.device(device)
    gaps = []
    # the CPU's random state, and the CUDA device's when on one, are restored afterwards
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(0)
        for start in range(0, real.size(0), batch_size):
            x = from_uint8(real[start : start + batch_size].to(device))
            z = torch.randn(x.size(0), generator.latent_dim, 1, 1, generator=noise).to(device)
            d_real, d_fake = (
                torch.sigmoid(discriminator(seen(x))).mean(),
                torch.sigmoid(discriminator(seen(generator(z)))).mean(),
            )
            gaps.append((d_real - d_fake).item() * x.size(0))
    return sum(gaps) / real.size(0)


def extractor_has_logits(extractor: torch.nn.Module) -> bool:
    return bool(getattr(extractor, "has_logits", False))


# --------------------------------------------------------------------------------------------------
# the benchmark
# --------------------------------------------------------------------------------------------------
def make_run(cfg: DictConfig, row: str, seed: int, device: torch.device):
    folder = Path(cfg.out_dir) / f"{row}-seed{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    if row == CLASSIC:
        return ClassicRun(cfg, seed, folder, device)
    try:
        return RecipeRun(cfg, list(cfg.recipes[row]), seed, folder, device)
    except HydraException as error:  # a mistyped override: one line before any row trains
        reason = " ".join(line.strip() for line in str(error).splitlines()[:2] if line.strip())
        raise UserError(
            f"quality: recipes.{row} does not compose ({reason}); fix it in the benchmark's config"
        ) from None


def check(cfg: DictConfig) -> None:
    """Bad settings are one line before anything trains."""
    root = Path(cfg.data_path).expanduser()
    if not root.is_dir():
        raise UserError(f"quality: no images at data_path={root}; point it at CIFAR-10's train folder")
    unknown = [r for r in cfg.rows if r != CLASSIC and r not in cfg.recipes]
    if unknown:
        raise UserError(f"quality: rows {unknown} are not in recipes ({sorted(cfg.recipes)}) nor `{CLASSIC}`")
    if cfg.evaluate_every <= 0 or cfg.iterations % cfg.evaluate_every:
        raise UserError(
            f"quality: iterations={cfg.iterations} must be a multiple of evaluate_every={cfg.evaluate_every} (> 0)"
        )
    for row, length in (cfg.get("row_iterations") or {}).items():
        if row not in cfg.recipes and row != CLASSIC:
            raise UserError(
                f"quality: row_iterations names {row}, which is not a row (recipes or `{CLASSIC}`)"
            )
        if (
            isinstance(length, bool)
            or not isinstance(length, int)
            or length <= 0
            or length % cfg.evaluate_every
        ):
            raise UserError(
                f"quality: row_iterations.{row}={length} must be a positive multiple of "
                f"evaluate_every={cfg.evaluate_every}"
            )
    for key in ("final_fakes", "best_fakes"):
        count = cfg.get(key)
        if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count < 2):
            raise UserError(f"quality: {key}={count} must be a whole number of fakes >= 2, or null for none")


def command_line() -> str:
    """This run's command, for the results (Hydra's task overrides; none outside a Hydra app)."""
    from hydra.core.hydra_config import HydraConfig

    overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
    return " ".join(["python -m benchmarks.quality", *overrides])


def benchmark(cfg: DictConfig) -> list[dict]:
    """Trains and scores every (row, seed) up to ``iterations``, resuming from ``out_dir``; returns the points."""
    check(cfg)
    device = pick_device(cfg.device)
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    done = {point_key(p): p for p in load_results(out / "quality.json")}  # every point, in order
    mine: dict[tuple, dict] = {}  # the points this process scored or rescored: another process sharing the
    # folder may have written its own since this one loaded quality.json, and only these replace what is there
    scorer = Scorer(cfg, device)  # computes (or reads) the reference statistics, cached under their key
    if cfg.get("reference_only"):
        log.info(
            "quality: reference_only=true: the statistics of %d training images are cached",
            scorer.num_real_used,
        )
        return []
    protocol = {
        "image_size": cfg.image_size,
        "batch_size": cfg.batch_size,
        "data": str(cfg.data_path),
        "train_images": cfg.subset or "all",
        "num_fake": scorer.num_fake,
        "num_real": scorer.num_real_used,
        "features": scorer.description,
        "device": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"cpu x{torch.get_num_threads()}",
        "recipes": {
            row: OmegaConf.to_container(cfg.recipes[row]) if row != CLASSIC else CLASSIC for row in cfg.rows
        },
        "command": command_line(),
    }
    if (parts := assembly_line(Path(cfg.data_path).expanduser())) is not None:
        protocol["data_parts"] = parts  # assembled from transfer parts: how much of the set arrived
        log.info("quality: the training folder holds %s", parts)
    check_resumable(out / "quality.json", protocol)
    log.info("quality: %s", protocol)
    started = time.perf_counter()
    for seed in cfg.seeds:
        runs = {row: make_run(cfg, row, seed, device) for row in cfg.rows}
        trained = {}
        for row, run in runs.items():
            run.resume()
            trained[row] = trained_seconds(run)
        # stage by stage, every row in turn: a time-limited run ends with all rows at about the same length
        for iteration in range(cfg.evaluate_every, cfg.iterations + 1, cfg.evaluate_every):
            for row, run in runs.items():
                if iteration > row_length(cfg, row):
                    continue  # a row capped by row_iterations has finished
                scored = done.get((row, seed, iteration))
                if (scored and not wants_final(cfg, scored)) or (not scored and iteration < run.iteration):
                    continue  # scored, or passed by a longer earlier run
                if out_of_time(cfg, started):
                    log.warning(
                        "quality: time_limit_minutes=%s reached before %s seed %d iteration %d; the same "
                        "command resumes from here",
                        cfg.time_limit_minutes,
                        row,
                        seed,
                        iteration,
                    )
                    write_results(cfg.out_dir, list(mine.values()), protocol)
                    return list(done.values())
                if scored:  # the last iteration of a finished run, to be scored again with final_fakes
                    if run.iteration == iteration:
                        score_final(cfg, scorer, run, scored, device)
                        mine[point_key(scored)] = scored
                        write_results(cfg.out_dir, list(mine.values()), protocol)
                    else:  # its state is gone, or a longer earlier run went past this iteration
                        log.warning(
                            "quality: %s seed %d: its saved state is at iteration %d, not %d, so fid_final "
                            "is not scored",
                            row,
                            seed,
                            run.iteration,
                            iteration,
                        )
                    continue
                if iteration > run.iteration:  # == : trained before a stop, not scored yet
                    start, before = time.perf_counter(), run.iteration
                    try:
                        run.train_until(iteration)
                    finally:  # a saved state (the stage's, or where SIGTERM stopped a recipe row) with its time
                        if run.iteration > before:
                            trained[row] += time.perf_counter() - start
                            progress = {"iteration": run.iteration, "train_seconds": trained[row]}
                            write_text(run.folder / "progress.json", json.dumps(progress))
                start = time.perf_counter()
                point = {
                    "row": row,
                    "seed": seed,
                    "iteration": iteration,
                    "batch_size": run.batch_size,
                    "train_seconds": round(trained[row], 1),
                    **run.parameters,
                }
                generator = run.generator.to(device)  # Lightning's teardown leaves a fitted model on the CPU
                point.update(scorer.score(generator))
                if run.networks is not None:
                    point["d_gap"] = d_gap(run.networks, scorer.gap_images, run.batch_size, device)
                    if run.augment is not None:  # and on what D sees in training: the guard's signal
                        point["d_gap_seen"] = d_gap(
                            run.networks, scorer.gap_images, run.batch_size, device, run.augment
                        )
                augment_p = run.augment_p  # how far the adaptive augmentation has gone (docs/small_data.md)
                if augment_p is not None:
                    point["augment_p"] = augment_p
                keep_if_best(run, point, generator, done)
                point["score_seconds"] = round(time.perf_counter() - start, 1)
                write_grid(generator, run.folder / f"samples_{iteration:06d}.png", cfg.grid, device)
                if wants_final(cfg, point):
                    score_final(cfg, scorer, run, point, device)
                done[point_key(point)] = mine[point_key(point)] = point
                write_results(cfg.out_dir, list(mine.values()), protocol)
                log.info("quality: %s", point)
        for row, run in runs.items():  # each finished run's best point, scored again with best_fakes
            best = best_point(done, row, seed)
            finished = run.iteration == row_length(cfg, row)
            if cfg.get("best_fakes") and finished and best and wants_best(cfg, best):
                score_best(cfg, scorer, run, best, device)
                mine[point_key(best)] = best
                write_results(cfg.out_dir, list(mine.values()), protocol)
    write_results(cfg.out_dir, list(mine.values()), protocol)
    points = list(done.values())
    print(markdown_table(points, protocol))
    print(f"wrote {out / 'quality.json'}, {out / 'quality.md'} and {out / 'fid.png'}")
    return points


def row_length(cfg: DictConfig, row: str) -> int:
    """How long ``row`` trains: ``iterations``, or less where ``row_iterations`` caps a slow row (the classic
    loop on a GPU)."""
    return min(cfg.iterations, (cfg.get("row_iterations") or {}).get(row, cfg.iterations))


def wants_final(cfg: DictConfig, point: dict) -> bool:
    """The run's last point, not yet scored with ``final_fakes`` fakes (or scored with another count)."""
    final = cfg.get("final_fakes")
    last = row_length(cfg, point["row"])
    return final is not None and point["iteration"] == last and point.get("final_fakes") != final


def score_final(cfg: DictConfig, scorer: Scorer, run, point: dict, device: torch.device) -> None:
    """Adds ``fid_final`` (and ``fid_subset_final``, ``is_mean_final``): the last iteration's generator scored
    again with ``final_fakes`` fakes. FID is biased upwards by roughly a constant over the number of fakes
    (Chong & Forsyth, 2020), so a final figure of more fakes is nearer the published 50,000-fake protocol, while
    the curve stays cheap."""
    start = time.perf_counter()
    values = scorer.score(run.generator.to(device), cfg.final_fakes)
    point.update({f"{key}_final": value for key, value in values.items()})
    point["final_fakes"] = cfg.final_fakes
    point["final_score_seconds"] = round(time.perf_counter() - start, 1)
    log.info(
        "quality: %s seed %d: fid_final %.2f of %d fakes",
        point["row"],
        point["seed"],
        point["fid_final"],
        cfg.final_fakes,
    )


def best_point(done: dict, row: str, seed: int) -> dict | None:
    """The (row, seed) point of the lowest FID so far."""
    points = [p for p in done.values() if p["row"] == row and p["seed"] == seed]
    return min(points, key=lambda p: p["fid"]) if points else None


def best_file(run) -> Path:
    return run.folder / "generator_best.pt"


def keep_if_best(run, point: dict, generator: torch.nn.Module, done: dict) -> None:
    """Saves the generator of a point that beats the run's earlier ones as a standalone generator file
    (``generator_best.pt``, which every loader and tool reads: ``python -m dcgan_lit.tools.evaluate
    ckpt_path=...`` scores it anywhere), and its iteration and FID beside it (``generator_best.json``)."""
    best = best_point(done, point["row"], point["seed"])
    if best is None or point["fid"] < best["fid"]:
        save_generator(generator, best_file(run))
        about = {
            "iteration": point["iteration"],
            "fid": point["fid"],
            "row": point["row"],
            "seed": point["seed"],
        }
        write_text(best_file(run).with_suffix(".json"), json.dumps(about))


def wants_best(cfg: DictConfig, point: dict) -> bool:
    return point.get("best_fakes") != cfg.best_fakes


def score_best(cfg: DictConfig, scorer: Scorer, run, point: dict, device: torch.device) -> None:
    """Adds ``fid_best`` (and the like): the best point's generator scored again with ``best_fakes`` fakes (the
    published protocol scores the best and the last point with 50,000)."""
    if point["iteration"] == run.iteration and point.get("final_fakes") == cfg.best_fakes:
        values = {k.removesuffix("_final"): v for k, v in point.items() if k.endswith("_final")}
    else:
        about = best_file(run).with_suffix(".json")
        saved = json.loads(about.read_text()) if about.is_file() and best_file(run).is_file() else None
        if saved is None or int(saved["iteration"]) != point["iteration"]:
            log.warning(
                "quality: %s seed %d: no saved generator of its best point (iteration %d), so fid_best is not "
                "scored",
                point["row"],
                point["seed"],
                point["iteration"],
            )
            return
        values = scorer.score(load_generator(best_file(run), device), cfg.best_fakes)
    point.update({f"{key}_best": value for key, value in values.items()})
    point["best_fakes"] = cfg.best_fakes
    log.info("quality: %s seed %d: fid_best %.2f of %d fakes (iteration %d)", point["row"], point["seed"],
             point["fid_best"], cfg.best_fakes, point["iteration"])  # fmt: skip


def trained_seconds(run) -> float:
    """The training time behind a resumed run's saved state (its progress.json), 0 for a new run. A process
    killed between writing the state and its progress.json leaves the time of an earlier iteration: that time is
    kept, and the uncounted iterations are named."""
    path = run.folder / "progress.json"
    if run.iteration == 0 or not path.is_file():
        return 0.0
    progress = json.loads(path.read_text())
    if progress["iteration"] != run.iteration:
        log.warning(
            "quality: %s's training time is recorded up to iteration %d, its state is at %d; %s",
            run.folder,
            progress["iteration"],
            run.iteration,
            "the time of the iterations between is not counted"
            if progress["iteration"] < run.iteration
            else "its train_seconds restart from 0",
        )
    return float(progress["train_seconds"]) if progress["iteration"] <= run.iteration else 0.0


def out_of_time(cfg: DictConfig, started: float) -> bool:
    limit = cfg.get("time_limit_minutes")
    return limit is not None and time.perf_counter() - started > 60 * float(limit)


def write_grid(generator: torch.nn.Module, path: Path, count: int, device: torch.device) -> None:
    """``count`` samples of fixed latents (seed 0, the same for every row) as one PNG."""
    z = torch.randn(count, generator.latent_dim, 1, 1, generator=torch.Generator().manual_seed(0)).to(device)
    with eval_mode(generator):
        save_grid(generate(generator, z), path, nrow=int(count**0.5))


@hydra.main(version_base="1.3", config_path="../conf", config_name="benchmarks/quality")
def main(cfg: DictConfig) -> None:
    exit_on_user_error(lambda: benchmark(cfg))


if __name__ == "__main__":
    main()
