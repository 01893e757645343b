"""The model: the DCGAN networks, the LightningModule that trains them, GAN losses, DiffAugment, G's EMA."""
