"""The training run: config checks, callbacks and loggers built from config, sweeps, DDP checks, then fit."""
