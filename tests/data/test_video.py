"""The video dataset on a real mpeg4 file written with PyAV: frame sampling, crops, augmentation, errors."""

import sys

import numpy as np
import pytest
import torch

from dcgan_lit.data import VideoDataModule
from dcgan_lit.data.video import sample_indices
from dcgan_lit.errors import UserError
from dcgan_lit.run.fit import train
from tests.helpers.config import compose_config
from tests.helpers.fake_data import write_video

pytest.importorskip("av")


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("video") / "clip.mp4")


def make(video, **kwargs) -> VideoDataModule:
    dm = VideoDataModule(path=str(video), image_size=32, batch_size=4, cache_dir=None, **kwargs)
    dm.setup()
    return dm


def frame_levels(images: torch.Tensor) -> list[float]:
    """The gray level of each image's centre: 4 x the frame it came from."""
    return [image[:, 12:20, 12:20].float().mean().item() for image in images]


def test_sample_indices():
    assert sample_indices(60, 10, None) == [0, 7, 13, 20, 26, 33, 39, 46, 52, 59]
    assert sample_indices(60, None, 7) == [0, 7, 14, 21, 28, 35, 42, 49, 56]
    assert sample_indices(5, 100, None) == [0, 1, 2, 3, 4]
    assert sample_indices(4, None, None) == [0, 1, 2, 3]


def test_n_frames_evenly_centre_cropped(video):
    dm = make(video, num_frames=10)
    images = dm.train_set.images
    assert images.shape == (10, 3, 32, 32) and images.dtype == torch.uint8
    expected = [4 * i for i in sample_indices(60, 10, None)]
    assert all(abs(got - want) < 8 for got, want in zip(frame_levels(images), expected, strict=True))
    # the centred square of a 128x64 frame is the gray middle half: no red or blue edge
    assert (images[:, 0] - images[:, 2]).abs().max() < 30


def test_every_kth_frame_and_more_frames_than_the_video(video, caplog):
    assert len(make(video, frame_step=7).train_set) == 9
    assert len(make(video, num_frames=1000).train_set) == 60
    assert "fewer than dataset.num_frames=1000" in caplog.text


def test_random_crops_are_seeded_and_reach_the_edges(video):
    first = make(video, frame_step=20, crop="random", crops_per_frame=4, seed=1).train_set.images
    again = make(video, frame_step=20, crop="random", crops_per_frame=4, seed=1).train_set.images
    assert first.shape == (12, 3, 32, 32) and torch.equal(first, again)
    red_or_blue = [(image[0] > 200).any() or (image[2] > 200).any() for image in first]
    assert any(red_or_blue)  # a square slid off-centre shows an edge band
    other_seed = make(video, frame_step=20, crop="random", crops_per_frame=4, seed=2).train_set.images
    assert not torch.equal(first, other_seed)


def test_symmetries_and_normalisation_are_in_the_cached_dataset(video, tmp_path):
    args = {
        "path": str(video),
        "image_size": 32,
        "batch_size": 4,
        "num_frames": 5,
        "cache_dir": str(tmp_path),
    }
    dm = VideoDataModule(**args, symmetries="all", per_image_normalize=True)
    dm.setup()
    assert dm.train_set.images.shape == (40, 3, 32, 32)
    means = dm.train_set.images.float().mean(dim=(1, 2, 3))
    assert (means - 127.5).abs().max() < 3  # every image re-centred, whatever its frame's brightness
    assert len(list(tmp_path.glob("video-32px-3ch-*.pt"))) == 1
    assert VideoDataModule(**args).cache_key() != dm.cache_key()


def test_missing_undecodable_and_no_pyav_are_one_line(tmp_path, monkeypatch):
    with pytest.raises(UserError, match="no video file at") as error:
        VideoDataModule(path=str(tmp_path / "absent.mp4")).check_source()
    assert "\n" not in str(error.value)
    bad = tmp_path / "bad.mp4"
    bad.write_text("this is not a video")
    with pytest.raises(UserError, match="cannot decode") as error:
        VideoDataModule(path=str(bad)).check_source()
    assert "\n" not in str(error.value)
    monkeypatch.setitem(sys.modules, "av", None)  # as if PyAV were not installed
    with pytest.raises(UserError, match="pip install av"):
        VideoDataModule(path=str(bad)).check_source()


def test_a_stream_that_breaks_after_its_header_is_one_line(tmp_path):
    data = bytearray(write_video(tmp_path / "clip.mp4", frames=30).read_bytes())
    third = len(data) // 3
    data[third : 2 * third] = np.random.default_rng(0).integers(0, 256, third, dtype=np.uint8).tobytes()
    (tmp_path / "clip.mp4").write_bytes(bytes(data))  # the header and index at the end stay intact
    dm = VideoDataModule(path=str(tmp_path / "clip.mp4"), image_size=32, batch_size=2, cache_dir=None)
    dm.check_source()
    assert dm.total_frames == 30
    with pytest.raises(UserError, match="cannot decode .*clip.mp4 as a video") as error:
        dm.setup()
    assert "\n" not in str(error.value)


def test_bad_options_are_one_line():
    with pytest.raises(UserError, match="exclusive"):
        VideoDataModule(path="x.mp4", num_frames=10, frame_step=2)
    with pytest.raises(UserError, match="dataset.crop="):
        VideoDataModule(path="x.mp4", crop="corner")


def test_dataset_video_without_a_path_is_one_line(tmp_path):
    cfg = compose_config(["dataset=video", "accelerator=cpu", "logger=none"], tmp_path)
    with pytest.raises(UserError, match=r"^dataset.path must be set .*dataset.path=/path/to/data$"):
        train(cfg)
