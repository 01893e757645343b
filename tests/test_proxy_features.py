"""Proxy FID: the rotation-prediction feature network trains reproducibly, round-trips weights_only, and scores."""

import pytest
import torch

from dcgan_lit import proxy_features
from dcgan_lit.errors import UserError
from dcgan_lit.module import DCGAN
from dcgan_lit.proxy_features import ProxyFeatures, load_proxy, proxy_fid, train_proxy


def real_images(n=96, seed=0) -> torch.Tensor:
    return torch.randint(
        0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed)
    )


def test_training_is_reproducible_and_changes_the_network():
    torch.manual_seed(123)
    untrained = ProxyFeatures().state_dict()
    first = train_proxy(real_images(), steps=3, batch_size=8, seed=0).state_dict()
    second = train_proxy(real_images(), steps=3, batch_size=8, seed=0).state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)
    other = train_proxy(real_images(), steps=3, batch_size=8, seed=1).state_dict()
    assert not all(torch.equal(first[k], other[k]) for k in first)
    assert not torch.equal(first["body.0.weight"], untrained["body.0.weight"])


def test_features_are_64_numbers_per_image_at_any_input_size():
    network = ProxyFeatures().eval()
    assert network(torch.rand(5, 3, 64, 64) * 2 - 1).shape == (5, 64)
    assert network(torch.rand(5, 3, 32, 32) * 2 - 1).shape == (5, 64)


def test_cli_writes_a_weights_only_checkpoint_and_scores_generators(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(proxy_features, "load_catfaces", lambda data_dir: real_images(200))
    out = tmp_path / "features.pt"
    proxy_features.main(["train", "--out", str(out), "--steps", "2"])
    network = load_proxy(out)  # weights_only=True inside
    assert isinstance(network, ProxyFeatures) and not network.training

    torch.manual_seed(0)
    model = DCGAN(image_size=32, channels=3, ngf=8, ndf=8, num_fixed_samples=4)
    checkpoint = tmp_path / "m.ckpt"
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams)}, checkpoint)
    score = proxy_fid(network, real_images(200), checkpoint, num_fake=200)
    assert score > 0 and score == proxy_fid(network, real_images(200), checkpoint, num_fake=200)

    # The CLI scores against all 200 (shuffled) real images: the same statistics, so the same number.
    proxy_features.main(["score", "--features", str(out), "--num-fake", "200", str(checkpoint)])
    value, path = capsys.readouterr().out.strip().splitlines()[-1].split()
    assert float(value) == pytest.approx(score, rel=1e-3, abs=1e-3) and path == str(checkpoint)


def test_an_ema_checkpoint_is_scored_by_its_ema_generator_unless_told_otherwise(tmp_path):
    torch.manual_seed(0)
    network = train_proxy(real_images(), steps=3, batch_size=8)
    model = DCGAN(image_size=32, channels=3, ngf=8, ndf=8, num_fixed_samples=4, ema={"decay": 0.9})
    with torch.no_grad():  # an average that differs from G
        for p in model.generator_ema.parameters():
            p.mul_(0.5)
    checkpoint = tmp_path / "m.ckpt"
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams)}, checkpoint)
    without_ema = {k: v for k, v in model.state_dict().items() if not k.startswith("generator_ema.")}
    raw_only = tmp_path / "raw.ckpt"
    torch.save({"state_dict": without_ema, "hyper_parameters": dict(model.hparams)}, raw_only)
    real = real_images(200)
    ema_score = proxy_fid(network, real, checkpoint, num_fake=200)
    raw_score = proxy_fid(network, real, checkpoint, num_fake=200, ema=False)
    assert raw_score == proxy_fid(network, real, raw_only, num_fake=200) and ema_score != raw_score


def test_missing_feature_network_says_how_to_make_it(tmp_path):
    with pytest.raises(UserError, match="python -m dcgan_lit.proxy_features train --out"):
        load_proxy(tmp_path / "nope.pt")
