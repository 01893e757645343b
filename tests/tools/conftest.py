"""Fixtures of the tools' tests."""

import pytest

from dcgan_lit.checkpoint.load import generator_from_checkpoint


@pytest.fixture(scope="module")
def generator(tiny_run):
    """The session's tiny run's generator."""
    return generator_from_checkpoint(tiny_run / "checkpoints/last.ckpt")
