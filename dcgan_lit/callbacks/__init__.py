"""Lightning callbacks of dcgan-lit (Lightning's own ModelCheckpoint and RichProgressBar are used as is)."""

from dcgan_lit.callbacks.export import ExportGenerator
from dcgan_lit.callbacks.fid import FIDCallback, attach_fid, build_fid_callback, check_fid_objective
from dcgan_lit.callbacks.samples import SampleGrids, save_grid

__all__ = [
    "ExportGenerator",
    "FIDCallback",
    "SampleGrids",
    "attach_fid",
    "build_fid_callback",
    "check_fid_objective",
    "save_grid",
]
