"""Hydra sweeps: the task wrapper, W&B groups, multirun, the joblib and submitit launchers, Optuna."""

from __future__ import annotations

import logging
import math
import sys
from pathlib import Path

import pytest
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf, open_dict

from dcgan_lit.errors import UserError
from dcgan_lit.run.sweep import SweepReport, in_multirun, objective, task_wrapper, wandb_sweep_options
from tests.helpers.config import ROOT, compose_config
from tests.helpers.runs import as_multirun_job, logged_rows, run_cli, tiny_args
from tests.helpers.wandb_records import finished_run_files, read_history, read_runs


@pytest.fixture(autouse=True)
def _forget_hydra_config():
    """No test leaves a (multirun) Hydra config behind for the next one."""
    yield
    HydraConfig.instance().cfg = None


def test_objective_is_the_configured_metric():
    assert objective({"train/loss_g": 0.75, "val/fid": 30.0}, "val/fid") == 30.0
    assert objective({"train/loss_g": 0.75}, None) is None
    with pytest.raises(UserError, match=r"optimized_metric=val/fid_best was not logged.*train/loss_g"):
        objective({"train/loss_g": 0.75}, "val/fid_best")
    with pytest.raises(UserError, match="diverged"):
        objective({"train/loss_g": math.nan}, "train/loss_g")


def test_wandb_joins_the_sweeps_group_only_in_a_multirun(tmp_path):
    cfg = compose_config(["logger=wandb"], tmp_path / "run")
    assert not in_multirun() and wandb_sweep_options(cfg.logger.wandb) == {}
    as_multirun_job(cfg, tmp_path / "lr_search", num=3)
    assert wandb_sweep_options(cfg.logger.wandb) == {"group": "lr_search", "name": "mnist-dcgan32-3"}
    with open_dict(cfg):
        cfg.logger.wandb.group = "mine"
    assert wandb_sweep_options(cfg.logger.wandb) == {"name": "mnist-dcgan32-3"}  # a set group is kept


def exit_code_when_written(run_dir: Path, timeout: float = 20.0) -> int | None:
    """The run's exit code, once W&B's service has flushed its exit record (it may lag wandb.finish)."""
    finished_run_files(run_dir, timeout)
    return read_runs(run_dir)[0]["exit_code"]


def test_a_failed_job_is_logged_its_wandb_run_closed_and_the_sweep_goes_on(tmp_path, caplog):
    import wandb

    cfg = as_multirun_job(compose_config(["optimized_metric=train/loss_g"], tmp_path / "7"), tmp_path, num=7)

    def failing(_cfg):
        wandb.init(mode="offline", dir=str(tmp_path), project="dcgan-lit")
        raise UserError("dataset.batch_size=0 must be a positive integer")

    def crashing(_cfg):
        raise RuntimeError("CUDA out of memory")

    with caplog.at_level(logging.INFO):
        assert task_wrapper(failing)(cfg) is None
        assert wandb.run is None  # finished, so the next job opens its own run
        assert task_wrapper(crashing)(cfg) is None
        assert task_wrapper(lambda _cfg: {"train/loss_g": 0.5})(cfg) == 0.5
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert errors[0].getMessage() == (
        f"error: job 7 ({tmp_path / '7'}) failed: dataset.batch_size=0 must be a positive integer; "
        "the sweep goes on"
    )
    assert errors[0].exc_info is None  # a user error is one line
    assert errors[1].exc_info[0] is RuntimeError  # anything else keeps its traceback
    (run_file,) = tmp_path.rglob("run-*.wandb")
    assert exit_code_when_written(run_file.parent) == 1
    assert not (tmp_path / "7" / "failed.txt").exists()  # the job that then succeeded removed it


def test_the_sweep_report_lists_the_failed_jobs(tmp_path, caplog):
    for num, fails in enumerate([True, False, True]):
        job = as_multirun_job(compose_config([], tmp_path / str(num)), tmp_path, num=num)
        (tmp_path / str(num) / ".hydra").mkdir(parents=True)
        (tmp_path / str(num) / ".hydra" / "overrides.yaml").write_text("[]\n")

        def task(_cfg, fails=fails, num=num):
            if fails:
                raise UserError(f"job {num} went wrong\nsecond line")
            return {}

        task_wrapper(task)(job)
    caplog.clear()
    with caplog.at_level(logging.INFO):
        SweepReport().on_multirun_end(job)
    assert [r.getMessage() for r in caplog.records if r.name == "dcgan_lit.run.sweep"] == [
        "Sweep finished: 2 of 3 job(s) failed (each job's log is in its folder):",
        f"  {tmp_path / '0'}: UserError: job 0 went wrong second line",
        f"  {tmp_path / '2'}: UserError: job 2 went wrong second line",
    ]


def test_a_single_run_raises(tmp_path):
    def failing(_cfg):
        raise UserError("bad")

    with pytest.raises(UserError, match="bad"):
        task_wrapper(failing)(compose_config([], tmp_path))
    assert "wandb" not in sys.modules or sys.modules["wandb"].run is None


def test_slurm_launcher_takes_its_resources_from_the_trainer(tmp_path):
    cfg = compose_config(
        [
            "hydra/launcher=slurm",
            "trainer=ddp",
            "trainer.devices=4",
            "trainer.num_nodes=2",
            "hydra.launcher.partition=gpu",
            "hydra.launcher.timeout_min=720",
            "hydra.launcher.mem_gb=128",
        ],
        tmp_path,
    )
    launcher = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    assert launcher["_target_"].endswith("SlurmLauncher")
    assert (launcher["partition"], launcher["nodes"], launcher["gpus_per_node"]) == ("gpu", 2, 4)
    assert (launcher["tasks_per_node"], launcher["timeout_min"], launcher["mem_gb"]) == (4, 720, 128)


def test_optuna_search_space_covers_the_documented_hyperparameters(tmp_path):
    cfg = compose_config(["hparams_search=optuna"], tmp_path)
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_.endswith("OptunaSweeper") and sweeper.direction == "minimize"
    assert set(sweeper.params) == {
        "model.optimizer_g.lr",
        "model.optimizer_d.lr",
        "search.beta1",
        "dataset.batch_size",
        "model.ngf",
        "model.ndf",
        "model.d_steps",
    }
    assert cfg.optimized_metric == "val/fid_best"
    assert list(cfg.model.optimizer_g.betas) == list(cfg.model.optimizer_d.betas) == [0.5, 0.999]


def job_dirs(sweep: Path) -> list[Path]:
    return sorted((p for p in sweep.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))


def overrides_of(job: Path) -> list[str]:
    return OmegaConf.load(job / ".hydra" / "overrides.yaml")


@pytest.mark.slow
def test_multirun_2x2_runs_four_jobs_in_one_wandb_group(image_folder, tmp_path):
    sweep = tmp_path / "lr_and_width"
    args = tiny_args(image_folder, "logger=wandb", "model.ngf=4,8", "dataset.batch_size=8,16")
    result = run_cli("-m", *args, f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = job_dirs(sweep)
    assert [j.name for j in jobs] == ["0", "1", "2", "3"]
    combinations = set()
    for job in jobs:
        assert (job / "checkpoints" / "last.ckpt").is_file()
        config = OmegaConf.load(job / ".hydra" / "config.yaml")
        combinations.add((config.model.ngf, config.dataset.batch_size))
        runs = read_runs(job / "wandb")  # exactly one W&B run per job, closed before the next job started
        assert len(runs) == 1
        assert runs[0] == {"group": "lr_and_width", "name": f"imagefolder-dcgan32-{job.name}", "exit_code": 0}
        history = read_history(job / "wandb")
        assert len([row for row in history if "train/loss_d" in row]) == 2  # this job's iterations only
    assert combinations == {(4, 8), (4, 16), (8, 8), (8, 16)}


@pytest.mark.slow
def test_joblib_runs_jobs_in_parallel_and_a_failing_job_does_not_stop_the_sweep(image_folder, tmp_path):
    sweep = tmp_path / "joblib"
    args = tiny_args(image_folder, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "model.d_steps=0,1,2")
    result = run_cli("-m", *args, f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Joblib.Parallel(n_jobs=2" in result.stdout + result.stderr
    failed, *completed = job_dirs(sweep)
    log = (failed / "train.log").read_text()
    assert (
        f"error: job 0 ({failed}) failed: model.d_steps=0 must be an integer from 1 to 100; the paper uses 1; the sweep goes on"
        in log
    )
    assert not (failed / "checkpoints").exists()
    assert "Sweep finished: 1 of 3 job(s) failed" in result.stdout + result.stderr
    for job, d_steps in zip(completed, (1, 2), strict=True):
        checkpoint = torch.load(job / "checkpoints" / "last.ckpt", weights_only=False)
        assert checkpoint["global_step"] == 2 * (d_steps + 1)  # both jobs trained their 2 iterations


@pytest.mark.slow
def test_submitit_local_launcher_completes_a_job(image_folder, tmp_path):
    sweep = tmp_path / "submitit"
    args = tiny_args(image_folder, "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=5")
    # submitit's job process imports dcgan_lit afresh: make it this checkout's, whatever is installed
    result = run_cli(
        "-m", *args, f"hydra.sweep.dir={sweep}", cwd=tmp_path, env_extra={"PYTHONPATH": str(ROOT)}
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (job,) = job_dirs(sweep)
    assert torch.load(job / "checkpoints" / "last.ckpt", weights_only=False)["global_step"] == 4
    assert list((sweep / ".submitit").glob("*/*_result.pkl"))  # submitit ran it as its own job


@pytest.mark.slow
def test_optuna_runs_two_trials_and_reports_the_best(image_folder, tmp_path):
    sweep = tmp_path / "optuna"
    args = tiny_args(
        image_folder,
        "hparams_search=optuna",
        "metrics=tiny",  # the objective val/fid_best, with the offline feature extractor
        "hydra.sweeper.n_trials=2",
        "dataset.batch_size=choice(8,16)",
        "model.ngf=choice(4,8)",
        "model.ndf=choice(4,8)",
    )
    result = run_cli(*args, f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = job_dirs(sweep)
    assert len(jobs) == 2
    # what train.py returned for each trial: the lowest logged val/fid
    fids = {job.name: min(float(r["val/fid"]) for r in logged_rows(job) if r["val/fid"]) for job in jobs}
    results = OmegaConf.load(sweep / "optimization_results.yaml")
    best = min(fids, key=fids.get)
    assert results.best_value == pytest.approx(fids[best], rel=1e-6)
    best_config = OmegaConf.load(sweep / best / ".hydra" / "config.yaml")
    assert results.best_params["model.ngf"] == best_config.model.ngf in (4, 8)  # the command line's space
    assert results.best_params["dataset.batch_size"] == best_config.dataset.batch_size
    assert list(best_config.model.optimizer_g.betas) == [results.best_params["search.beta1"], 0.999]
    assert "Best value:" in result.stdout + result.stderr
