"""The shared ImageDataModule: the device-resident dataset moves only indices and trains."""

import torch

from dcgan_lit.data.datamodule import ImageDataModule


class Resident(ImageDataModule):
    name = "resident"

    def __init__(self, images: torch.Tensor, **kwargs) -> None:
        super().__init__(image_size=images.size(-1), channels=images.size(1), **kwargs)
        self.images = images

    def source(self) -> str:
        return "memory"

    def cache_parts(self) -> dict:
        return {}

    def build(self) -> torch.Tensor:
        return self.images


def test_device_resident_dataset_moves_only_indices():
    images = torch.randint(0, 256, (20, 3, 8, 8), dtype=torch.uint8)
    datamodule = Resident(images, batch_size=5, hflip=False, on_device=True)
    datamodule.setup()
    batch = next(iter(datamodule.train_dataloader()))
    assert batch.dtype == torch.int64 and batch.shape == (5,)  # what crosses to the device
    x = datamodule.on_after_batch_transfer(batch, 0)
    torch.testing.assert_close(x, images[batch].float() / 127.5 - 1)
    assert datamodule.resident(torch.device("cpu"))[0] is datamodule.resident(torch.device("cpu"))[0]


def test_device_resident_dataset_trains(tiny_cfg):
    from dcgan_lit.run.fit import train

    metrics = train(tiny_cfg("dataset.on_device=true", "trainer.max_steps=2", "logger=none"))
    assert torch.isfinite(torch.tensor(metrics["train/loss_d"]))
