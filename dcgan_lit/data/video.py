"""A dataset made from the frames of one video file, decoded once with PyAV (the optional extra ``video``)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from dcgan_lit.data.cache import fingerprint_files
from dcgan_lit.data.datamodule import ImageDataModule
from dcgan_lit.errors import UserError

log = logging.getLogger(__name__)

INSTALL_HINT = "install PyAV: pip install av (or pip install -e '.[video]')"


def import_av():
    """The ``av`` module, or one clear line saying how to install it."""
    try:
        import av
    except ImportError:
        raise UserError(
            f"Dataset video: reading videos needs PyAV, which is not installed; {INSTALL_HINT}"
        ) from None
    return av


def count_frames(path: Path) -> int:
    """Frames in the first video stream: the container's count, else one demuxing pass (no decoding)."""
    av = import_av()
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        if stream.frames:
            return int(stream.frames)
        return sum(1 for packet in container.demux(stream) if packet.size)


def sample_indices(total: int, num_frames: int | None, frame_step: int | None) -> list[int]:
    """``num_frames`` indices spread evenly over ``total`` frames, or every ``frame_step``-th frame."""
    if num_frames is not None:
        if num_frames >= total:
            return list(range(total))
        return sorted({round(i * (total - 1) / max(num_frames - 1, 1)) for i in range(num_frames)})
    return list(range(0, total, frame_step or 1))


def square_crops(
    frame: np.ndarray, crop: str, scale: float, count: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """Square crops of side ``scale`` x the shorter side: the centred one, or ``count`` at random positions."""
    height, width = frame.shape[:2]
    side = max(1, round(min(height, width) * scale))
    if crop == "center":
        positions = [((height - side) // 2, (width - side) // 2)]
    else:
        positions = [
            (int(rng.integers(0, height - side + 1)), int(rng.integers(0, width - side + 1)))
            for _ in range(count)
        ]
    return [frame[top : top + side, left : left + side] for top, left in positions]


class VideoDataModule(ImageDataModule):
    """Frames of the video at ``path``: sampled (``num_frames`` evenly or every ``frame_step``-th), cropped to
    squares (centred or random), resized to the model size, then cached as one uint8 tensor."""

    name = "video"

    def __init__(
        self,
        path: str,
        num_frames: int | None = None,
        frame_step: int | None = None,
        crop: str = "center",
        crop_scale: float = 1.0,
        crops_per_frame: int = 1,
        seed: int = 0,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.path = Path(path).expanduser()
        if num_frames is not None and frame_step is not None:
            raise UserError(
                "dataset.num_frames and dataset.frame_step are exclusive; set one, the other null"
            )
        if (num_frames is not None and num_frames < 1) or (frame_step is not None and frame_step < 1):
            raise UserError(f"dataset.num_frames={num_frames} / frame_step={frame_step} must be positive")
        if crops_per_frame < 1:
            raise UserError(f"dataset.crops_per_frame={crops_per_frame} must be a positive integer")
        if crop not in ("center", "random"):
            raise UserError(f"dataset.crop={crop!r} is not allowed; use 'center' or 'random'")
        if not 0 < crop_scale <= 1:
            raise UserError(
                f"dataset.crop_scale={crop_scale} must be in (0, 1]: the fraction of the shorter side"
            )
        self.num_frames, self.frame_step = num_frames, frame_step
        self.crop, self.crop_scale, self.seed = crop, crop_scale, seed
        self.crops_per_frame = crops_per_frame if crop == "random" else 1

    def check_source(self) -> None:
        if not self.path.is_file():
            raise UserError(
                f"Dataset {self.name}: no video file at {self.path.resolve()}; set dataset.path=<video file> "
                "(any format FFmpeg reads: mp4, mov, avi, mkv, webm, ...)"
            )
        try:
            self.total_frames = count_frames(self.path)
        except UserError:
            raise
        except Exception as error:  # PyAV raises InvalidDataError, IndexError (no video stream), ...
            raise self.undecodable(error) from None
        if self.total_frames == 0:
            raise UserError(f"Dataset {self.name}: {self.path.resolve()} has no video frames")

    def undecodable(self, error: Exception) -> UserError:
        """The one line for a file FFmpeg cannot read as a video."""
        reason = str(error).splitlines()[0] if str(error) else "no video stream"
        return UserError(
            f"Dataset {self.name}: cannot decode {self.path.resolve()} as a video ({type(error).__name__}: "
            f"{reason}); check the file or re-encode it"
        )

    def source(self) -> str:
        return str(self.path.resolve())

    def cache_parts(self) -> dict:
        return {
            "path": str(self.path.resolve()),
            "file": fingerprint_files([self.path.resolve()], self.path.resolve().parent),
            "num_frames": self.num_frames,
            "frame_step": self.frame_step,
            "crop": [
                self.crop,
                self.crop_scale,
                self.crops_per_frame,
                self.seed if self.crop == "random" else None,
            ],
            "resize": "bicubic",
        }

    def build(self) -> torch.Tensor:
        av = import_av()
        wanted = sample_indices(self.total_frames, self.num_frames, self.frame_step)
        if self.num_frames is not None and self.num_frames > self.total_frames:
            log.warning(
                "Video has %d frames, fewer than dataset.num_frames=%d: taking all",
                self.total_frames,
                self.num_frames,
            )
        log.info(
            "Decoding %d of %d frames of %s (once; later runs use the cache)",
            len(wanted),
            self.total_frames,
            self.path,
        )
        rng = np.random.default_rng(self.seed)
        try:
            images, remaining = self.decode(av, set(wanted), rng)
        except av.FFmpegError as error:  # a stream that breaks after a readable header
            raise self.undecodable(error) from None
        if remaining:
            log.warning("Video %s ended %d sampled frames early", self.path, len(remaining))
        stacked = (
            np.stack(images)
            if images
            else np.zeros((0, self.image_size, self.image_size, self.channels), np.uint8)
        )
        if stacked.ndim == 3:
            stacked = stacked[..., None]
        return torch.from_numpy(stacked).permute(0, 3, 1, 2).contiguous()

    def decode(self, av, wanted: set[int], rng: np.random.Generator) -> tuple[list[np.ndarray], set[int]]:
        """The crops of the ``wanted`` frames as (S, S[, 3]) arrays, and the indices the video never reached."""
        mode = "RGB" if self.channels == 3 else "L"
        images, remaining = [], set(wanted)
        with av.open(str(self.path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for index, frame in enumerate(container.decode(stream)):
                if index in remaining:
                    remaining.discard(index)
                    pixels = frame.to_ndarray(format="rgb24")
                    for crop in square_crops(pixels, self.crop, self.crop_scale, self.crops_per_frame, rng):
                        image = Image.fromarray(crop).resize((self.image_size,) * 2, Image.Resampling.BICUBIC)
                        images.append(np.asarray(image.convert(mode)))
                if not remaining:
                    break
        return images, remaining
