"""Builds the run's objects from their config with Hydra's instantiate: a failure is one line naming the key."""

from __future__ import annotations

import logging
import netrc
import os
from pathlib import Path

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from lightning.pytorch import Callback
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig

from dcgan_lit.callbacks import without_unfed_checkpoints
from dcgan_lit.errors import UserError
from dcgan_lit.run.sweep import wandb_sweep_options

log = logging.getLogger(__name__)


def build(key: str, node: DictConfig, **kwargs):
    """``instantiate(node, **kwargs)`` for the config at ``key``; any failure to build it (a bad ``_target_``,
    a value its class refuses) is one :class:`UserError` line naming the key, never a traceback."""
    try:
        return instantiate(node, **kwargs)
    except UserError:
        raise
    except Exception as error:  # noqa: BLE001 - whatever the class raised, the user's fix is in this config
        cause = error
        while isinstance(cause, InstantiationException) and cause.__cause__ is not None:
            cause = cause.__cause__
        detail = " ".join(str(cause).split()) or type(cause).__name__
        full_key = next(
            (
                line.split(":", 1)[1].strip()
                for line in str(error).splitlines()
                if line.startswith("full_key:")
            ),
            "",
        )
        where = full_key if full_key.startswith(key) else key
        target = node.get("_target_", "?") if isinstance(node, DictConfig) else "?"
        raise UserError(
            f"{where}: could not build {target}: {detail[:300]}; check the {where}.* settings"
        ) from None


def instantiate_callbacks(cfg: DictConfig | None) -> list[Callback]:
    """Every entry of the ``callbacks`` group that has a ``_target_`` (null entries, and factories that return
    None, such as FID's with ``metrics=none``, are switched off)."""
    built = [
        build(f"callbacks.{name}", c)
        for name, c in (cfg or {}).items()
        if isinstance(c, DictConfig) and "_target_" in c
    ]
    return without_unfed_checkpoints([c for c in built if c is not None])


def wandb_has_credentials() -> bool:
    """True when W&B could log online: an API key in the environment or in ~/.netrc."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai").split("://")[-1].rstrip("/")
    try:
        return netrc.netrc().authenticators(host) is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def wandb_should_be_offline(requested: bool | None) -> bool:
    """``logger.wandb.offline``: true/false as set; null (the default) means offline unless credentials exist."""
    if requested is not None:
        return bool(requested)
    if os.environ.get("WANDB_MODE", "").lower() in ("offline", "dryrun", "disabled"):
        return True
    return not wandb_has_credentials()


def instantiate_loggers(cfg: DictConfig | None, wandb_run_id: str | None = None) -> list[Logger]:
    """Every entry of the ``logger`` group; W&B is put offline when there is no way to reach a server.

    In a multirun job the W&B run joins the group named after the sweep (see :mod:`dcgan_lit.run.sweep`).
    ``wandb_run_id`` (the id saved in the checkpoint a run resumes from) continues that W&B run, unless
    ``logger.wandb.id`` says otherwise.
    """
    loggers: list[Logger] = []
    if not cfg:
        return loggers
    for name, conf in cfg.items():
        if not (isinstance(conf, DictConfig) and "_target_" in conf):
            continue
        if name == "wandb":
            offline = wandb_should_be_offline(conf.get("offline"))
            Path(conf.save_dir).mkdir(parents=True, exist_ok=True)
            # Offline goes through wandb.init(mode=...): Lightning's own offline=True refuses log_model,
            # although W&B records artifacts offline and `wandb sync` uploads them.
            run_id = conf.get("id") or wandb_run_id
            logger = build(
                f"logger.{name}",
                conf,
                offline=False,
                mode="offline" if offline else None,
                id=run_id,
                **wandb_sweep_options(conf),
            )
            # Lightning's WandbLogger always passes `anonymous`, which W&B no longer reads and warns about
            # ("The anonymous setting has no effect"); unset, it is dropped here rather than filtered.
            if logger._wandb_init.get("anonymous") is None:
                logger._wandb_init.pop("anonymous", None)
            if run_id and not conf.get("id"):
                log.info("W&B: continuing run %s (its id is in the checkpoint resumed from)", run_id)
            if offline:
                log.info(
                    "W&B is logging offline under %s/wandb; upload later with `wandb sync %s/wandb/offline-run-*`"
                    " (set WANDB_API_KEY or run `wandb login` to log online)",
                    conf.save_dir,
                    conf.save_dir,
                )
            loggers.append(logger)
        else:
            loggers.append(build(f"logger.{name}", conf))
    return loggers
