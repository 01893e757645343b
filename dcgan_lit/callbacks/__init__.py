"""Lightning callbacks of dcgan-lit (Lightning's own ModelCheckpoint and RichProgressBar are used as is)."""

from dcgan_lit.callbacks.export import ExportGenerator
from dcgan_lit.callbacks.samples import SampleGrids, save_grid

__all__ = ["ExportGenerator", "SampleGrids", "save_grid"]
