"""dcgan_lit.model.sampling: which generator samples, eval mode for a while, G(z) in batches."""

import pytest
import torch
from torch import nn

from dcgan_lit.model.networks import Generator
from dcgan_lit.model.sampling import eval_mode, generate, generate_batches, sampling_generator
from tests.helpers.model import tiny_model


@pytest.mark.parametrize("training", [True, False])
def test_eval_mode_restores_the_mode_it_found_even_after_an_exception(training):
    network = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2)).train(training)
    with eval_mode(network) as inside:
        assert inside is network and not network.training and not network[1].training
    assert network.training is training and network[1].training is training
    with pytest.raises(RuntimeError, match="boom"), eval_mode(network):
        raise RuntimeError("boom")
    assert network.training is training and network[1].training is training


def test_sampling_generator_is_the_ema_when_there_is_one():
    plain = tiny_model()
    assert sampling_generator(plain) is plain.generator
    with_ema = tiny_model(ema={"decay": 0.9})
    assert sampling_generator(with_ema) is with_ema.generator_ema
    with_ema.generator_ema = None  # an attribute left as None counts as no EMA
    assert sampling_generator(with_ema) is with_ema.generator


def test_generate_batches_splits_z_and_equals_g_of_all_z_at_once():
    torch.manual_seed(0)
    generator = Generator(latent_dim=8, image_size=32, channels=3, ngf=4).eval()
    z = torch.randn(10, 8, 1, 1)
    seen = []

    def progress(chunks, description, total):
        seen.append((description, total))
        return chunks

    batches = list(generate_batches(generator, z, batch_size=4, progress=progress, description="test"))
    assert [b.size(0) for b in batches] == [4, 4, 2] and seen == [("test", 3)]
    with torch.no_grad():
        whole = generator(z)
    torch.testing.assert_close(torch.cat(batches), whole, rtol=0, atol=1e-6)
    torch.testing.assert_close(generate(generator, z, batch_size=3), whole, rtol=0, atol=1e-6)
    assert generate(generator, z[:0]).numel() == 0
