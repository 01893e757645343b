"""train.py end to end: outputs, max_steps semantics, resume, W&B offline history, one-line errors."""

import csv
import logging
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

from dcgan_lit.api import load_discriminator, load_generator
from dcgan_lit.errors import UserError
from dcgan_lit.model.module import DCGAN
from dcgan_lit.run.fit import resolve_ckpt_path, train
from tests.helpers.config import TINY
from tests.helpers.runs import logged_rows, run_cli
from tests.helpers.wandb_records import read_config, read_history


def test_train_writes_every_output(tiny_cfg, tmp_path, caplog):
    cfg = tiny_cfg("trainer.max_steps=5")
    with caplog.at_level(logging.INFO):
        metrics = train(cfg)
    run = Path(cfg.paths.output_dir)
    # FID is off (metrics=none): generator.pt is the last generator, and a warning says it is not the best
    [warning] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("FID is off, so")]
    assert warning.startswith("FID is off, so generator.pt is the last generator (iteration 5), not the best")
    assert "generator.pt: the last generator, of iteration 5" in caplog.text
    exported = torch.load(run / "generator.pt", weights_only=True)["state_dict"]
    last = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert all(torch.equal(v, last[k]) for k, v in exported.items())
    assert (run / "checkpoints" / "last.ckpt").is_file()
    real = Image.open(run / "real_samples.png")
    assert real.size[0] > 32 * 4  # a grid, not one image
    samples = sorted(p.name for p in (run / "samples").glob("*.png"))
    # 32 images / batch 8 = 4 iterations per epoch: 5 iterations end inside the second epoch
    assert samples == [
        "epoch_0000.png",
        "epoch_0001.png",
        "final.png",
        "step_0000002.png",
        "step_0000004.png",
    ]
    assert all(torch.isfinite(torch.tensor(v)) for v in metrics.values())
    rows = logged_rows(run)
    assert (
        len([r for r in rows if r.get("train/loss_d")]) == 5
    )  # one row per iteration at log_every_n_steps=1


def test_max_steps_counts_iterations_not_optimizer_steps(tiny_cfg):
    cfg = tiny_cfg("trainer.max_steps=3", "model.d_steps=2")
    train(cfg)
    checkpoint = torch.load(Path(cfg.paths.output_dir) / "checkpoints/last.ckpt", weights_only=False)
    assert checkpoint["global_step"] == 3 * 3  # Lightning's count: 2 D steps + 1 G step per iteration
    assert checkpoint["loops"]["fit_loop"]["epoch_loop.state_dict"]["_batches_that_stepped"] == 3
    steps = [int(r["step"]) for r in logged_rows(Path(cfg.paths.output_dir)) if r.get("train/loss_g")]
    assert steps == [0, 1, 2]  # the logged x-axis is iterations


def test_iterations_between_log_steps_are_not_logged_yet_the_logs_and_final_metrics_are_the_same(
    tiny_cfg, tmp_path, monkeypatch
):
    """training_step logs only what Lightning writes (every log_every_n_steps) and the last iteration."""
    deterministic = [
        "trainer.deterministic=true",
        "seed=3",
        "trainer.max_steps=7",
        "callbacks.samples.every_n_steps=0",
    ]
    every = train(tiny_cfg(*deterministic, output_dir=tmp_path / "every"))  # TINY logs every iteration
    logged_at, log_dict = [], DCGAN.log_dict

    def spy(self, *args, **kwargs):
        logged_at.append(self.iteration - 1)  # after its steps: the iteration that just ran
        return log_dict(self, *args, **kwargs)

    monkeypatch.setattr(DCGAN, "log_dict", spy)
    sparse = train(tiny_cfg(*deterministic, "trainer.log_every_n_steps=3", output_dir=tmp_path / "sparse"))
    assert logged_at == [2, 5, 6]  # Lightning writes 2 and 5; 6 is the last
    keys = ("train/loss_d", "train/loss_g", "train/d_real", "train/d_fake")

    def rows(run):
        return {int(r["step"]): [r[k] for k in keys] for r in logged_rows(tmp_path / run) if r.get(keys[0])}

    assert sorted(rows("every")) == list(range(7)) and sorted(rows("sparse")) == [2, 5]
    assert rows("sparse") == {step: rows("every")[step] for step in (2, 5)}  # the same values, as written
    assert {k: every[k] for k in keys} == {k: sparse[k] for k in keys}  # train() returns iteration 6's


def test_resume_from_last_continues_the_step_count_and_the_fixed_grid(tiny_cfg, tmp_path):
    run = tmp_path / "resumable"
    first = tiny_cfg("trainer.max_steps=4", output_dir=run)
    train(first)
    ckpt = torch.load(run / "checkpoints/last.ckpt", weights_only=False)
    assert ckpt["global_step"] == 8
    fixed = ckpt["state_dict"]["fixed_noise"]

    second = tiny_cfg("trainer.max_steps=6", "ckpt_path=last", "seed=123", output_dir=run)
    train(second)
    resumed = torch.load(run / "checkpoints/last.ckpt", weights_only=False)
    assert resumed["global_step"] == 12
    assert torch.equal(resumed["state_dict"]["fixed_noise"], fixed)  # same grid despite another seed
    assert (run / "samples" / "step_0000006.png").is_file()
    rows = [r for r in logged_rows(run) if r.get("train/loss_d")]
    assert [int(r["step"]) for r in rows][-2:] == [4, 5]
    # the first part's metrics are kept (Lightning's CSV logger would delete them)
    with open(run / "csv" / "metrics.1.csv") as f:
        assert [int(r["step"]) for r in csv.DictReader(f) if r.get("train/loss_d")] == [0, 1, 2, 3]


def test_ckpt_path_last_finds_a_sibling_run(tiny_cfg, tmp_path):
    parent = tmp_path / "runs"
    train(tiny_cfg("trainer.max_steps=2", output_dir=parent / "2026-01-01_00-00-00"))
    found = resolve_ckpt_path("last", parent / "2026-01-02_00-00-00")
    assert found.path == str(parent / "2026-01-01_00-00-00" / "checkpoints" / "last.ckpt")
    assert "state_dict" in found.checkpoint  # read once, here; Lightning's resume is handed this copy
    assert resolve_ckpt_path("last", tmp_path / "elsewhere" / "run") is None
    with pytest.raises(UserError, match="no such file"):
        resolve_ckpt_path(str(tmp_path / "missing.ckpt"), tmp_path)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.image_size=48", "model.image_size=48 is not supported"),
        ("dataset.batch_size=0", "dataset.batch_size=0 must be an integer >= 1"),
        ("dataset.batch_size=true", "dataset.batch_size=true must be an integer >= 1"),
        ("model.optimizer_d.lr=-1", "model.optimizer_d.lr=-1"),
        ("model.optimizer_g.betas=[0.5,1.0]", "model.optimizer_g.betas"),
        ("dataset.channels=4", "dataset.channels=4"),
        ("dataset.num_workers=100000", "dataset.num_workers=100000 must be an integer from 0"),
        ("model.ngf=640000", "model.ngf=640000 must be an integer from 1 to 1024; the paper uses 64"),
        ("model.d_steps=607259239", "model.d_steps=607259239 must be an integer from 1 to 100"),
        ("seed=-1", "seed=-1 must be an integer from 0 to"),
        ("gan=3", "gan=3 is not a group of settings"),
    ],
)
def test_bad_config_is_refused_before_data_are_read(tiny_cfg, override, message):
    with pytest.raises(UserError, match=message.replace("[", r"\[")):
        train(tiny_cfg(override))


@pytest.mark.slow
def test_cli_end_to_end_with_wandb_offline(image_folder, tmp_path):
    run = tmp_path / "cli_run"
    tiny = [o for o in TINY if not o.startswith("logger=")]
    result = run_cli(
        "dataset=imagefolder",
        f"dataset.path={image_folder}",
        *tiny,
        "logger=wandb",
        "trainer.max_steps=4",
        f"hydra.run.dir={run}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout + result.stderr
    assert "Dataset imagefolder: 32 images, 3x32x32, from" in out
    assert "wandb sync" in out
    for path in ("checkpoints/last.ckpt", "real_samples.png", "samples/final.png", ".hydra/config.yaml"):
        assert (run / path).is_file(), path
    history = read_history(run / "wandb")
    losses = [row["train/loss_d"] for row in history if "train/loss_d" in row]
    assert len(losses) == 4 and all(isinstance(v, float) for v in losses)
    assert any("samples" in key for row in history for key in row)  # sample grids were logged as images
    config = read_config(run / "wandb")
    assert config["model"]["image_size"] == 32
    assert config["params/generator"] > 0


@pytest.mark.slow
def test_cli_user_error_is_one_line_without_traceback(tmp_path):
    result = run_cli("dataset=catfaces", f"paths.data_dir={tmp_path / 'absent'}", cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "catfaces" in errors[0] and "kaggle" in errors[0]


@pytest.mark.slow
def test_cli_prints_the_composed_config(tmp_path):
    result = run_cli("--cfg", "job", "dataset=catfaces", "model=dcgan64", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "image_size: 64" in result.stdout and "CatFacesDataModule" in result.stdout


@pytest.mark.parametrize("experiment", ["pokemon_plus", "monet_plus"])
def test_small_data_experiments_train_on_recipe_small_ada_and_export_the_best_generator(
    experiment, tiny_cfg, caplog
):
    # start_step=0: the average already differs from G after a few iterations, so the export check can tell.
    cfg = tiny_cfg(
        f"experiment={experiment}",
        "model=dcgan32",
        "metrics=tiny",  # FID on (the tiny extractor): best.ckpt and a best-FID generator.pt
        "trainer.max_steps=6",
        "dataset.batch_size=8",  # 2 iterations per epoch of the 16 images: FID at iterations 2, 4 and 6
        "model.ema.start_step=0",
    )
    # the benchmark's `small_ada` row (docs/small_data.md): cifar10_best's training, the dataset's flips,
    # one-sided label smoothing and DiffAugment's operations at ADA's adaptive probability
    assert cfg.model.d_norm == "batch" and cfg.gan.loss == "bce" and cfg.model.ema.decay == 0.999
    assert cfg.gan.label_smoothing == 0.1 and cfg.model.label_smoothing == 0.1
    assert cfg.model.ema.warmup and cfg.model.ema.recompute_bn and cfg.dataset.hflip
    assert cfg.model.optimizer_g.lr == cfg.model.optimizer_d.lr == 0.0004
    assert list(cfg.augment.policy) == ["color", "translation", "cutout"] and cfg.model.ada.target == 0.6
    best = tiny_cfg("experiment=cifar10_best", "model=dcgan32")
    assert cfg.model.ema == best.model.ema and cfg.model.optimizer_g == best.model.optimizer_g
    assert cfg.model.optimizer_d == best.model.optimizer_d
    with caplog.at_level(logging.INFO):
        metrics = train(cfg)
    assert all(torch.isfinite(torch.tensor(v)) for v in metrics.values())
    checkpoints = Path(cfg.paths.output_dir) / "checkpoints"
    state = torch.load(checkpoints / "best.ckpt", weights_only=True)
    # The exported generator.pt is the best-FID checkpoint's EMA generator, and the log says which iteration
    exported = load_generator(Path(cfg.paths.output_dir) / "generator.pt").state_dict()
    assert all(torch.equal(v, state["state_dict"][f"generator_ema.{k}"]) for k, v in exported.items())
    assert not all(torch.equal(v, state["state_dict"][f"generator.{k}"]) for k, v in exported.items())
    iteration = state["global_step"] // 2
    assert f"generator.pt: the best-FID generator, of iteration {iteration}" in caplog.text
    last = torch.load(checkpoints / "last.ckpt", weights_only=True)["state_dict"]
    assert 0 <= float(last["augment.p"]) <= 1  # the adaptive augmentation's state is in the checkpoint
    discriminator = load_discriminator(checkpoints / "last.ckpt")
    assert discriminator.norm == "batch"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("gan.loss=wgan", "gan.loss='wgan' is unknown"),
        ("gan.label_smoothing=1.5", "gan.label_smoothing=1.5 must be in [0, 1)"),
        ("model.d_norm=layer", "model.d_norm=layer is unknown"),
        ("augment.policy=[flip]", "augment.policy: unknown operation(s) ['flip']"),
        ("model.ema.decay=1.0", "model.ema.decay=1.0 must be in [0, 1)"),
        ("model.ema.recompute_bn=sometimes", "model.ema.recompute_bn=sometimes must be true or false"),
        ("+model.ema.decays=0.9", "model.ema.decays is not an EMA option"),
    ],
)
def test_bad_small_data_options_are_one_line_errors(override, message, tiny_cfg):
    with pytest.raises(UserError) as error:
        train(tiny_cfg(override))
    assert message in str(error.value)


def test_ckpt_path_last_resumes_a_sibling_only_of_the_same_training(tiny_cfg, tmp_path, caplog):
    """Given the run's config, a sibling folder resumes only if its saved config means the same training;
    otherwise the run is refused with one line naming what differs. Another folder's checkpoint is a warning."""
    parent = tmp_path / "runs"
    first = tiny_cfg("trainer.max_steps=2", output_dir=parent / "2026-01-01_00-00-00")
    train(first)
    (parent / "2026-01-01_00-00-00" / ".hydra").mkdir()
    OmegaConf.save(first, parent / "2026-01-01_00-00-00" / ".hydra" / "config.yaml")  # as Hydra does
    own = parent / "2026-01-02_00-00-00"

    def resolve(*overrides):
        cfg = tiny_cfg(*overrides, output_dir=own)
        resume = resolve_ckpt_path("last", own, cfg.model, config=cfg)
        return resume.path if resume else None

    with caplog.at_level(logging.WARNING):
        # speed settings are not the training's meaning
        assert resolve("dataset.num_workers=1").endswith("2026-01-01_00-00-00/checkpoints/last.ckpt")
    assert "resuming from another run folder's checkpoint" in caplog.text
    with pytest.raises(
        UserError, match=r"trained something else \(model.optimizer_d.lr=0.0002 there, 0.001 here"
    ):
        resolve("model.optimizer_d.lr=0.001")
    with pytest.raises(UserError, match=r"seed=42 there, 7 here"):
        resolve("seed=7")
    assert resolve_ckpt_path("last", own, siblings=False) is None  # a custom folder or a sweep job


@pytest.mark.slow
def test_ckpt_path_last_never_resumes_another_folder_or_sweep_job(image_folder, tmp_path):
    """Where ckpt_path=last may and may not look, through train.py: two custom run folders, a sweep's jobs, and
    the default layout (where a later run of the same experiment continues the earlier one's checkpoint, with a
    warning)."""
    tiny = [*TINY, "dataset=imagefolder", f"dataset.path={image_folder}", "trainer.max_steps=2"]

    def steps(run: Path) -> int:
        return torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)["global_step"]

    a, b = tmp_path / "a", tmp_path / "b"
    assert run_cli(*tiny, f"hydra.run.dir={a}", cwd=tmp_path).returncode == 0
    result = run_cli(*tiny, f"hydra.run.dir={b}", "ckpt_path=last", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "starting from scratch" in result.stdout + result.stderr
    assert steps(b) == 4  # b trained its own 2 iterations (D and G steps) from zero

    sweep = tmp_path / "sweep"
    # two jobs of the same training (they differ in logging only): job 1 must still not resume job 0
    jobs = ["trainer.log_every_n_steps=1,2", "ckpt_path=last", f"hydra.sweep.dir={sweep}"]
    result = run_cli("-m", *tiny, *jobs, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert steps(sweep / "0") == steps(sweep / "1") == 4  # job 1 did not resume job 0

    experiment = tmp_path / "outputs" / "train" / "imagefolder-dcgan32"
    runs = [f"hydra.run.dir={experiment / name}" for name in ("first", "second", "third")]
    assert run_cli(*tiny, runs[0], cwd=tmp_path).returncode == 0
    result = run_cli(*tiny, runs[1], "ckpt_path=last", "trainer.max_steps=3", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "resuming from another run folder's checkpoint" in result.stdout + result.stderr
    assert steps(experiment / "second") == 6  # continued from iteration 2 to 3
    result = run_cli(*tiny, runs[2], "ckpt_path=last", "model.optimizer_g.lr=0.001", cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    (error,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert "model.optimizer_g.lr=0.0002 there, 0.001 here" in error


def test_a_spectral_norm_discriminator_reloads_with_its_normalisation(tiny_cfg):
    cfg = tiny_cfg("trainer.max_steps=1", "model.d_norm=spectral", "gan.loss=hinge")
    train(cfg)
    last = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    assert any(
        "parametrizations.weight.original" in k for k in torch.load(last, weights_only=True)["state_dict"]
    )
    assert load_discriminator(last).norm == "spectral"


def test_a_resumed_run_reads_its_checkpoint_once(tiny_cfg, tmp_path, monkeypatch):
    import dcgan_lit.checkpoint.io as io

    train(tiny_cfg("trainer.max_steps=2", output_dir=tmp_path / "first"))
    last = tmp_path / "first" / "checkpoints" / "last.ckpt"
    reads = []
    load = io.torch.load

    def counting_load(path, *args, **kwargs):
        reads.append(Path(path))
        return load(path, *args, **kwargs)

    monkeypatch.setattr(io.torch, "load", counting_load)
    metrics = train(tiny_cfg("trainer.max_steps=3", f"ckpt_path={last}", output_dir=tmp_path / "second"))
    assert reads.count(last) == 1  # verified, then handed to Lightning's resume and the W&B run id as read
    assert "train/loss_d" in metrics
