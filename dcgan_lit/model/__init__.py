"""The model: the DCGAN networks, the LightningModule that trains them, GAN losses, DiffAugment, G's EMA, and the
random states an exact resume restores (rng)."""
