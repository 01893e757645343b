"""LSUN scenes (e.g. ``bedroom_train``) from the lmdb databases torchvision's LSUN reads (optional extra ``lsun``)."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import torch

from dcgan_lit.data.cache import fingerprint_files
from dcgan_lit.data.datamodule import ImageDataModule
from dcgan_lit.data.images import decode_images
from dcgan_lit.errors import UserError

log = logging.getLogger(__name__)

CHUNK = 4096  # images decoded at a time: the encoded bytes of all 3M bedrooms would not fit in memory


def import_lmdb():
    """The ``lmdb`` module, or one clear line saying how to install it."""
    try:
        import lmdb
    except ImportError:
        raise UserError(
            "Dataset lsun: reading LSUN needs the lmdb package, which is not installed; "
            "pip install lmdb (or pip install -e '.[lsun]')"
        ) from None
    return lmdb


class LSUNDataModule(ImageDataModule):
    """One LSUN category database, ``<root>/<category>_lmdb`` (torchvision's layout), resized and centre-cropped.

    Read with ``lmdb`` directly rather than torchvision's ``LSUN``, which pickles every key into a file in
    the working directory; the decoded images are cached like every other dataset.
    """

    name = "lsun"

    def __init__(
        self, root: str, category: str = "bedroom_train", max_images: int | None = None, **kwargs
    ) -> None:
        super().__init__(**kwargs)
        self.root = Path(root).expanduser()
        self.category = category
        self.max_images = max_images

    @property
    def database(self) -> Path:
        return self.root / f"{self.category}_lmdb"

    def check_source(self) -> None:
        import_lmdb()
        if not (self.database / "data.mdb").is_file():
            scene = self.category.rsplit("_", 1)[0]
            raise UserError(
                f"Dataset {self.name}: no lmdb database at {self.database.resolve()}; download it with "
                f"https://github.com/fyu/lsun (`python3 download.py -c {scene}`), unzip {self.category}_lmdb.zip "
                "there, or set paths.data_dir= / dataset.root= / dataset.category="
            )

    def source(self) -> str:
        return str(self.database.resolve())

    def cache_parts(self) -> dict:
        return {
            "category": self.category,
            "max_images": self.max_images,
            "database": fingerprint_files([self.database / "data.mdb"], self.database),
            "resize": "shorter-side-bicubic-center-crop",
        }

    def build(self) -> torch.Tensor:
        lmdb = import_lmdb()
        env = lmdb.open(str(self.database), readonly=True, lock=False, readahead=False, meminit=False)
        chunks, skipped = [], 0
        try:
            with env.begin(write=False) as txn:
                total = txn.stat()["entries"]
                count = min(total, self.max_images) if self.max_images else total
                log.info(
                    "Decoding %d of %d LSUN %s images (once; later runs use the cache)",
                    count,
                    total,
                    self.category,
                )
                values = txn.cursor().iternext(keys=False, values=True)
                for start in range(0, count, CHUNK):
                    encoded = [io.BytesIO(next(values)) for _ in range(min(CHUNK, count - start))]
                    images, bad = decode_images(encoded, self.image_size, self.channels)
                    chunks.append(images)
                    skipped += len(bad)
        finally:
            env.close()
        if skipped:
            log.warning(
                "Dataset %s: skipped %d of %d images that could not be decoded", self.name, skipped, count
            )
        empty = torch.empty(0, self.channels, self.image_size, self.image_size, dtype=torch.uint8)
        return torch.cat(chunks) if chunks else empty
