"""Lightning callbacks of dcgan-lit (Lightning's RichProgressBar on a terminal; its model summary as is)."""

from dcgan_lit.callbacks.class_interpolation import ClassInterpolationSheet
from dcgan_lit.callbacks.divergence import DivergenceGuard
from dcgan_lit.callbacks.fid import (
    FIDCallback,
    build_fid_callback,
    check_fid_objective,
    without_unfed_checkpoints,
)
from dcgan_lit.callbacks.generator_export import ExportGenerator
from dcgan_lit.callbacks.model_checkpoint import Checkpoint
from dcgan_lit.callbacks.samples import SampleGrids, save_grid

__all__ = [
    "Checkpoint",
    "ClassInterpolationSheet",
    "DivergenceGuard",
    "ExportGenerator",
    "FIDCallback",
    "SampleGrids",
    "build_fid_callback",
    "check_fid_objective",
    "save_grid",
    "without_unfed_checkpoints",
]
