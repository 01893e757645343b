"""Tiny datasets in the real on-disk formats: CIFAR-10 pickle batches, a PyAV video, a CelebA folder, an lmdb."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import numpy as np

CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def write_cifar10(root: Path, monkeypatch, per_batch: int = 20, seed: int = 0) -> Path:
    """Writes cifar-10-batches-py/ (5 train batches, a test batch, batches.meta) as torchvision's pickles.

    Labels cycle through the 10 classes and each image is filled with 10 * label, so a filter is checkable by
    value. torchvision checks every file's md5 against the real CIFAR-10's; the tiny files' own md5s are put
    in their place (the only thing patched: reading and decoding are torchvision's own).
    """
    from torchvision.datasets import CIFAR10

    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)

    def batch(name: str) -> list[str]:
        labels = [int(v) for v in rng.permutation(np.arange(per_batch) % 10)]
        data = np.repeat(np.array(labels, dtype=np.uint8)[:, None] * 10, 3 * 32 * 32, axis=1)
        with open(folder / name, "wb") as f:
            pickle.dump({"batch_label": name, "labels": labels, "data": data, "filenames": []}, f)
        return [name, md5(folder / name)]

    train_list = [batch(f"data_batch_{i}") for i in range(1, 6)]
    test_list = [batch("test_batch")]
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": CIFAR10_NAMES, "num_vis": 3072, "num_cases_per_batch": per_batch}, f)
    monkeypatch.setattr(CIFAR10, "train_list", train_list)
    monkeypatch.setattr(CIFAR10, "test_list", test_list)
    monkeypatch.setattr(CIFAR10, "meta", {**CIFAR10.meta, "md5": md5(folder / "batches.meta")})
    return folder


def write_video(path: Path, frames: int = 60, width: int = 128, height: int = 64) -> Path:
    """A real mpeg4 video written with PyAV: a red left quarter, a blue right quarter and a gray middle whose
    level is 4 x the frame index, so which frames were sampled and where they were cropped can be read back."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=30)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.bit_rate = 4_000_000
        for index in range(frames):
            pixels = np.zeros((height, width, 3), dtype=np.uint8)
            pixels[:, : width // 4] = (255, 0, 0)
            pixels[:, 3 * width // 4 :] = (0, 0, 255)
            pixels[:, width // 4 : 3 * width // 4] = 4 * index
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
