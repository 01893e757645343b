"""Train a DCGAN: ``python train.py dataset=catfaces model=dcgan64`` (see README.md and conf/train.yaml)."""

import os
import sys

import hydra
from omegaconf import DictConfig

from dcgan_lit.errors import UserError
from dcgan_lit.train import train


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    try:
        metrics = train(cfg)
    except UserError as error:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
    return metrics.get(cfg.get("optimized_metric", ""))


if __name__ == "__main__":
    main()
