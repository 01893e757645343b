"""Train a DCGAN: ``python train.py dataset=catfaces model=dcgan64`` (see README.md and conf/train.yaml)."""

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from dcgan_lit.errors import exit_on_user_error
from dcgan_lit.run.fit import train
from dcgan_lit.run.sweep import task_wrapper

run_task = task_wrapper(train)


def task_overrides() -> list[str]:
    """This run's command-line overrides (Hydra's), for the one-line error of an unexpected failure."""
    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Returns ``optimized_metric`` to Hydra sweepers; in a multirun a failed job is logged and the rest go on."""
    # a single run: a user error (or any error, named with the overrides) is one line, exit 1
    return exit_on_user_error(lambda: run_task(cfg), task_overrides())


if __name__ == "__main__":
    main()
