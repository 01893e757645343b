"""Everything the tests share that is not a fixture (fixtures live in tests/conftest.py).

config        ROOT, CONF_DIR, TINY, compose_config, compose_tool, real_data_dir
images        write_images: random image files of any PIL mode
fake_data     tiny datasets in their real on-disk formats (CIFAR-10, MNIST idx, video, CelebA, LSUN)
model         tiny_model, fit, snapshot, changed: a small DCGAN trained in-process
runs          run_cli (train.py in a subprocess), run_tool, logged_rows, tiny_args, as_multirun_job
metrics       CountingExtractor, MeanColour, fid_metrics, run_evaluate, FIDELITY_NAME
callbacks     test-only callbacks train.py builds from the config: PoisonAt, CollapseGenerator, AveragedGenerator, CrashAt, SigtermAt
latent        TILE, g: the latent tools' pixel arithmetic
wandb_records what an offline W&B run recorded
ddp_probe     callbacks that record what each DDP rank saw (loaded by train.py from the config)
"""
