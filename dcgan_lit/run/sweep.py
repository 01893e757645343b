"""Running the training task inside Hydra sweeps: one W&B run per job, failed jobs logged, the objective."""

from __future__ import annotations

import functools
import logging
import math
import sys
from collections.abc import Callable
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

from dcgan_lit.errors import UserError

log = logging.getLogger(__name__)

Task = Callable[[DictConfig], dict[str, float]]

FAILURE_FILE = "failed.txt"  # in a failed job's dir: the error line, for the end-of-sweep summary


def in_multirun() -> bool:
    """True inside a job of ``python train.py -m ...`` (any launcher or sweeper)."""
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def sweep_name() -> str | None:
    """The sweep's name, the last part of ``hydra.sweep.dir``, in a multirun job; None in a single run."""
    return Path(HydraConfig.get().sweep.dir).name if in_multirun() else None


def wandb_sweep_options(conf: DictConfig) -> dict[str, str]:
    """In a multirun job: W&B ``group`` = the sweep's name (unless set) and the job number in the run name."""
    if not in_multirun():
        return {}
    job_num = HydraConfig.get().job.num
    options = {"name": f"{conf.get('name') or 'job'}-{job_num}"}
    if not conf.get("group"):
        options["group"] = sweep_name()
    return options


def finish_wandb(failed: bool) -> None:
    """Closes the W&B run of this job, if one was started, so the next job of a sweep opens a fresh one."""
    wandb = sys.modules.get("wandb")  # never imported means no run to close
    if wandb is not None and wandb.run is not None:
        wandb.finish(exit_code=1 if failed else 0)


def objective(metrics: dict[str, float], name: str | None) -> float | None:
    """The value of ``optimized_metric`` that train.py returns to a sweeper; None when none is configured."""
    if not name:
        return None
    if name not in metrics:
        raise UserError(
            f"optimized_metric={name} was not logged by this run; logged: {sorted(metrics)}. "
            "Set optimized_metric to one of them"
        )
    value = float(metrics[name])
    if not math.isfinite(value):
        raise UserError(f"optimized_metric={name} is {value}: the run diverged")
    return value


def describe_job() -> str:
    """``job 3 (outputs/train/multiruns/<date>/3)``: which job of the sweep this is, and where its files are."""
    hydra = HydraConfig.get()
    return f"job {hydra.job.num} ({hydra.runtime.output_dir})"


def failure_file() -> Path:
    """This multirun job's ``failed.txt``."""
    return Path(HydraConfig.get().runtime.output_dir) / FAILURE_FILE


def report_failure(error: Exception) -> None:
    """Logs a failed job (one line for a :class:`UserError`, else the traceback) and leaves ``failed.txt``."""
    if isinstance(error, UserError):
        log.error("error: %s failed: %s; the sweep goes on", describe_job(), error)
    else:
        log.exception("%s failed; the sweep goes on", describe_job())
    path = failure_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    one_line = " ".join(line.strip() for line in str(error).splitlines())
    path.write_text(f"{type(error).__name__}: {one_line}\n")


def task_wrapper(task: Task) -> Callable[[DictConfig], float | None]:
    """Wraps the training task so it returns ``optimized_metric`` and always closes its W&B run.

    In a multirun a failed job is reported and returns None, so the launcher goes on with the other jobs and
    the Optuna sweeper records a failed trial. A single run re-raises.
    """

    @functools.wraps(task)
    def run(cfg: DictConfig) -> float | None:
        multirun, failed = in_multirun(), True
        if multirun:
            failure_file().unlink(missing_ok=True)  # a rerun into the same sweep dir starts clean
        try:
            value = objective(task(cfg), cfg.get("optimized_metric"))
            failed = False
            return value
        except Exception as error:
            if not multirun:
                raise
            report_failure(error)
            return None
        finally:
            finish_wandb(failed)

    return run


class SweepReport(Callback):
    """Hydra callback: at the end of a multirun, one log line per failed job (from their ``failed.txt``)."""

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        jobs = len(list(sweep_dir.glob("**/.hydra/overrides.yaml")))
        failures = sorted(sweep_dir.glob(f"**/{FAILURE_FILE}"), key=lambda p: natural_key(p, sweep_dir))
        if not failures:
            log.info("Sweep finished: %d job(s) in %s", jobs, sweep_dir)
            return
        log.error(
            "Sweep finished: %d of %d job(s) failed (each job's log is in its folder):", len(failures), jobs
        )
        for path in failures:
            log.error("  %s: %s", path.parent, path.read_text().strip())


def natural_key(path: Path, root: Path) -> list:
    """Sorts job folders 2 before 10."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in path.relative_to(root).parts]
