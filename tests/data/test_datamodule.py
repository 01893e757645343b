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


def test_on_device_auto_keeps_the_set_on_a_cuda_device_that_has_room_for_it():
    from dcgan_lit.data.datamodule import on_device_choice

    gib = 2**30
    cuda = torch.device("cuda", 0)
    assert on_device_choice(10 * gib, cuda, free_bytes=40 * gib) == (
        True,
        "10.00 GiB of images, 40.0 GiB free on cuda:0: copied once, batches indexed there",
    )
    chosen, why = on_device_choice(11 * gib, cuda, free_bytes=40 * gib)
    assert not chosen and why.endswith("more than 25% of it, so batches cross the bus")
    assert on_device_choice(1, torch.device("cpu"))[0] is False
    assert on_device_choice(1, torch.device("mps"))[0] is False


def test_on_device_auto_is_settled_at_set_up_and_said_once(caplog):
    import logging

    images = torch.randint(0, 256, (20, 3, 8, 8), dtype=torch.uint8)
    datamodule = Resident(images, batch_size=5, hflip=False)  # on_device: auto, the default
    with caplog.at_level(logging.INFO):
        datamodule.setup()
    assert datamodule.on_device is False  # no trainer: the CPU
    batch = next(iter(datamodule.train_dataloader()))
    assert batch.dtype == torch.uint8 and batch.shape == (5, 3, 8, 8)  # images, not indices
    [line] = [r.getMessage() for r in caplog.records if "on_device=auto" in r.getMessage()]
    assert line == "dataset.on_device=auto: off (training on cpu: batches are indexed in host memory)"
