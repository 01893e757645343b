"""The post-training tools, one module each: ``python -m dcgan_lit.tools.<name> ckpt_path=... [key=value ...]``.

``python -m dcgan_lit.tools`` lists them. Their shared pieces: :mod:`.app` (the Hydra entry, progress, output
lines), :mod:`.drawing` (grids, GIFs), :mod:`.latent` (z files and paths), :mod:`.projection` (fitting z to images, for
``project``), :mod:`.training_data` (a run's images), :mod:`.wandb_file` (what a W&B run recorded).
"""

TOOLS = {
    "generate": "images from a trained generator: files, a .zip (e.g. 7,000 for Kaggle) or one grid",
    "interpolate": "linear and spherical paths between latent points: rows of images and a GIF",
    "walk": "move single dimensions of z (paper, section 6.1): one row per dimension",
    "arithmetic": "vector arithmetic on z (paper, section 6.3): A - B + C from averaged concepts",
    "search": "score many samples by a criterion and keep the top k with their z (the 'pegasus' search)",
    "project": "the z (and class) whose G(z) best matches real images; memorization score train vs held-out",
    "neighbors": "nearest training images of samples, by pixels and by D's features (memorisation check)",
    "real_vs_fake": "a real batch beside samples of the untrained and of the trained generator",
    "evolution": "a run's fixed-z sample grids as a GIF, and its loss curves",
    "probe": "linear classifier on D's features (paper, section 5.1), trained D vs random D",
    "evaluate": "FID (and KID, IS, MiFID) of a checkpoint or a folder of images against a dataset",
    "export": "the generator as a state-dict file, TorchScript or ONNX",
}
