"""Tiny datasets in the real on-disk formats: CIFAR-10 pickle batches, MNIST idx files, a PyAV video, a CelebA
folder, an lmdb."""

from __future__ import annotations

import hashlib
import io
import pickle
from pathlib import Path

import numpy as np
from PIL import Image

CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def write_cifar10(
    root: Path,
    monkeypatch,
    per_batch: int = 20,
    seed: int = 0,
    label_names: list[str] = CIFAR10_NAMES,
    colours: bool = False,
) -> Path:
    """Writes cifar-10-batches-py/ (5 train batches, a test batch, batches.meta) as torchvision's pickles.

    Labels cycle through the ``label_names`` classes. By default each image is filled with 10 * label, so a
    filter is checkable by value; ``colours=True`` makes each image noise in [0, 120) plus 120 in channel
    ``label % 3`` (red, green, blue classes: separable by any sensible features). torchvision checks every
    file's md5 against the real CIFAR-10's; the tiny files' own md5s are put in their place (the only thing
    patched: reading and decoding are torchvision's own).
    """
    from torchvision.datasets import CIFAR10

    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    classes = len(label_names)

    def batch(name: str) -> list[str]:
        labels = [int(v) for v in rng.permutation(np.arange(per_batch) % classes)]
        if colours:
            data = rng.integers(0, 120, (per_batch, 3, 32, 32), dtype=np.uint8)
            for image, label in zip(data, labels, strict=True):
                image[label % 3] += 120
            data = data.reshape(per_batch, -1)
        else:
            data = np.repeat(np.array(labels, dtype=np.uint8)[:, None] * 10, 3 * 32 * 32, axis=1)
        with open(folder / name, "wb") as f:
            pickle.dump({"batch_label": name, "labels": labels, "data": data, "filenames": []}, f)
        return [name, md5(folder / name)]

    train_list = [batch(f"data_batch_{i}") for i in range(1, 6)]
    test_list = [batch("test_batch")]
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": list(label_names), "num_vis": 3072, "num_cases_per_batch": per_batch}, f)
    monkeypatch.setattr(CIFAR10, "train_list", train_list)
    monkeypatch.setattr(CIFAR10, "test_list", test_list)
    monkeypatch.setattr(CIFAR10, "meta", {**CIFAR10.meta, "md5": md5(folder / "batches.meta")})
    return folder


def write_idx(folder: Path, images: np.ndarray, labels: np.ndarray) -> None:
    """Writes MNIST's real idx format (uncompressed) for a few digits, as the train and the t10k split."""
    folder.mkdir(parents=True, exist_ok=True)
    n = len(images)
    for split in ("train", "t10k"):
        with open(folder / f"{split}-images-idx3-ubyte", "wb") as f:
            f.write(np.array([2051, n, 28, 28], dtype=">i4").tobytes() + images.astype(np.uint8).tobytes())
        with open(folder / f"{split}-labels-idx1-ubyte", "wb") as f:
            f.write(np.array([2049, n], dtype=">i4").tobytes() + labels.astype(np.uint8).tobytes())


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


def write_celeba(root: Path, monkeypatch, count: int = 8) -> Path:
    """root/celeba/ as torchvision's CelebA expects: img_align_celeba/*.jpg (178x218 faces: a white 108-pixel
    centre square on black) and the five annotation files, with their md5s registered in place of the real ones."""
    from torchvision.datasets import CelebA

    folder = root / "celeba"
    (folder / "img_align_celeba").mkdir(parents=True, exist_ok=True)
    names = [f"{i:06d}.jpg" for i in range(1, count + 1)]
    for name in names:
        pixels = np.zeros((218, 178, 3), dtype=np.uint8)
        pixels[55:163, 35:143] = 255  # the centred 108x108 square
        Image.fromarray(pixels).save(folder / "img_align_celeba" / name, quality=95)
    splits = [0] * (count - 4) + [1, 1, 2, 2]  # train, then 2 valid and 2 test faces
    attrs = ["5_o_Clock_Shadow", "Smiling"]
    landmarks = ["lefteye_x", "lefteye_y"]
    files = {
        "list_eval_partition.txt": [f"{n} {s}" for n, s in zip(names, splits, strict=True)],
        "identity_CelebA.txt": [f"{n} {i + 1}" for i, n in enumerate(names)],
        "list_bbox_celeba.txt": [str(count), "image_id x_1 y_1 width height"]
        + [f"{n} 1 2 3 4" for n in names],
        "list_landmarks_align_celeba.txt": [str(count), " ".join(landmarks)] + [f"{n} 69 109" for n in names],
        "list_attr_celeba.txt": [str(count), " ".join(attrs)] + [f"{n} -1 1" for n in names],
    }
    for name, lines in files.items():
        (folder / name).write_text("\n".join(lines) + "\n")
    file_list = [
        (file_id, md5(folder / name) if name in files else digest, name)
        for file_id, digest, name in CelebA.file_list
    ]
    monkeypatch.setattr(CelebA, "file_list", file_list)
    return folder


def write_lsun(root: Path, category: str = "bedroom_train", count: int = 10) -> Path:
    """root/<category>_lmdb: an lmdb of webp images (LSUN's encoding) under hex keys, as torchvision's LSUN reads."""
    import lmdb

    database = root / f"{category}_lmdb"
    root.mkdir(parents=True, exist_ok=True)
    env = lmdb.open(str(database), map_size=64 * 1024 * 1024)
    rng = np.random.default_rng(0)
    with env.begin(write=True) as txn:
        for i in range(count):
            buffer = io.BytesIO()
            pixels = np.full(
                (48, 64, 3), 20 * i, dtype=np.uint8
            )  # landscape, like LSUN's 256-pixel-short-side
            pixels[:, :4] = rng.integers(0, 256, (48, 4, 3))
            Image.fromarray(pixels).save(buffer, format="WEBP", lossless=True)
            txn.put(hashlib.sha1(str(i).encode()).hexdigest().encode(), buffer.getvalue())
        txn.put(b"zz-broken", b"not an image")  # LSUN keys sort as hex; this one comes last
    env.close()
    return database
