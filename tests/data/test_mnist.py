"""MNIST from its real idx files, and the one-line error when they are missing offline."""

import numpy as np
import pytest
import torch

from dcgan_lit.data import MNISTDataModule
from dcgan_lit.errors import UserError
from tests.helpers.fake_data import write_idx


def test_mnist_missing_offline_names_the_path(tmp_path):
    dm = MNISTDataModule(root=str(tmp_path), download=False, image_size=32, channels=1)
    with pytest.raises(UserError) as error:
        dm.check_source()
    assert str(tmp_path / "MNIST" / "raw") in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("channels", [1, 3])
def test_mnist_from_idx_files_resized_once(tmp_path, channels):
    rng = np.random.default_rng(0)
    digits = rng.integers(0, 256, (10, 28, 28))
    write_idx(tmp_path / "MNIST" / "raw", digits, np.arange(10))
    dm = MNISTDataModule(root=str(tmp_path), download=False, image_size=32, channels=channels, batch_size=4)
    dm.setup()
    images = dm.train_set.images
    assert images.shape == (10, channels, 32, 32) and images.dtype == torch.uint8
    assert not dm.hflip
