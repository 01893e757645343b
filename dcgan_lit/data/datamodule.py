"""The shared LightningDataModule: a decoded-once uint8 tensor, indexed per batch, preprocessed on the device.
Training receives blocks of batches (:class:`~dcgan_lit.batches.Block`), as many per step as the model asks."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from dcgan_lit.batches import Block, BlockSchedule, real_batch
from dcgan_lit.data.cache import cached_dataset, make_key
from dcgan_lit.data.sampler import ResumableShuffleSampler
from dcgan_lit.data.transforms import apply_symmetries, normalize_per_image, resolve_symmetries
from dcgan_lit.errors import UserError

log = logging.getLogger(__name__)


Batch = torch.Tensor | tuple[torch.Tensor, torch.Tensor]  # images, or (images, class labels) when conditional


class UInt8ImageDataset(Dataset):
    """Images held as one (N, C, H, W) uint8 tensor; a batch is one indexing operation, not N decodes.

    With ``labels`` (N,) int64 class indices, a batch is ``(images, labels)``. With ``indices_only`` a batch is
    just the sampled indices: the images (and labels) are then indexed where a copy already lives (on the
    accelerator), and nothing but the indices crosses the bus.
    """

    def __init__(
        self, images: torch.Tensor, indices_only: bool = False, labels: torch.Tensor | None = None
    ) -> None:
        assert images.dtype == torch.uint8 and images.dim() == 4, images.shape
        assert labels is None or labels.shape == (images.size(0),), (labels.shape, images.shape)
        self.images = images
        self.labels = labels
        self.indices_only = indices_only

    def __len__(self) -> int:
        return self.images.size(0)

    def __getitem__(self, index: int | list[int]) -> Batch:
        if isinstance(index, list):  # a block of indices (the DataLoader of a block sampler)
            return self.__getitems__(index)
        return self.images[index] if self.labels is None else (self.images[index], self.labels[index])

    def __getitems__(self, indices: list[int]) -> Batch:
        indices = torch.as_tensor(indices)
        if self.indices_only:
            return indices
        return self.images[indices] if self.labels is None else (self.images[indices], self.labels[indices])


def subset_indices(count: int, subset: int, seed: int) -> torch.Tensor:
    """The sorted indices of the fixed random ``subset`` of ``count`` images that ``dataset.subset`` trains on."""
    order = torch.randperm(count, generator=torch.Generator().manual_seed(seed))
    return order[:subset].sort().values


# dataset.on_device=auto keeps the decoded set on a CUDA device when it takes at most this share of its free memory
ON_DEVICE_SHARE = 0.25


def on_device_choice(nbytes: int, device: torch.device, free_bytes: int | None = None) -> tuple[bool, str]:
    """Whether ``nbytes`` of decoded images go to ``device`` once (``dataset.on_device=auto``), and why."""
    if device.type != "cuda":
        return False, f"training on {device.type}: batches are indexed in host memory"
    if free_bytes is None:
        free_bytes = torch.cuda.mem_get_info(device)[0]
    size = f"{nbytes / 2**30:.2f} GiB of images, {free_bytes / 2**30:.1f} GiB free on {device}"
    if nbytes <= ON_DEVICE_SHARE * free_bytes:
        return True, f"{size}: copied once, batches indexed there"
    return False, f"{size}: more than {ON_DEVICE_SHARE:.0%} of it, so batches cross the bus"


def return_batch(batch: Batch) -> Batch:
    """collate_fn for datasets whose ``__getitems__`` already returns the stacked batch."""
    return batch


class ImageDataModule(L.LightningDataModule):
    """Base class: subclasses say where images come from (:meth:`build`) and what identifies them.

    The decoded dataset is cached under ``cache_dir`` by a key over source, size, channels and preprocessing,
    so later runs skip decoding. Optional rotations/reflections (``symmetries``) and per-image normalisation
    (``per_image_normalize``) are applied once, before caching. Per step, a batch is indexed, moved to the
    device as uint8 and turned into floats in [-1, 1] there (with a random horizontal flip when ``hflip``).
    ``subset=N`` trains on a fixed random N of the images (chosen by ``subset_seed``, after the cache, so it
    shares the full set's cache). With ``on_device`` the whole uint8 tensor is copied to the accelerator once
    and batches are indexed there; ``"auto"`` (the default) does so on a CUDA device when the set takes at most
    :data:`ON_DEVICE_SHARE` of its free memory (:func:`on_device_choice`).

    ``conditional`` (sources with labels: :meth:`class_names`): batches are ``(images, labels)``, the int64
    class indices decoded once and cached beside the images (under their own cache key), drawn in the same
    resumable order.
    """

    name = "images"

    def __init__(
        self,
        image_size: int = 64,
        channels: int = 3,
        batch_size: int = 128,
        num_workers: int = 0,
        hflip: bool = True,
        cache_dir: str | None = None,
        pin_memory: bool = False,
        drop_last: bool = True,
        on_device: bool | str = "auto",
        symmetries: str | list[str] | None = None,
        per_image_normalize: bool = False,
        subset: int | None = None,
        subset_seed: int = 0,
        conditional: bool = False,
    ) -> None:
        super().__init__()
        self.image_size = image_size
        self.channels = channels
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.hflip = hflip
        self.cache_dir = cache_dir
        self.pin_memory = pin_memory
        self.drop_last = drop_last
        self.on_device = on_device
        self.symmetries = resolve_symmetries(symmetries)
        self.per_image_normalize = per_image_normalize
        self.subset = subset
        self.subset_seed = subset_seed
        self.conditional = conditional
        self.train_set: UInt8ImageDataset | None = None
        self._resident: tuple[torch.Tensor, torch.Tensor | None] | None = None
        self.sampler: ResumableShuffleSampler | None = None
        self._sampler_state: dict | None = None

    # -- what subclasses provide -------------------------------------------------------------------
    def check_source(self) -> None:
        """Raises :class:`UserError` with one line when the data are missing. Called before any decoding."""

    def source(self) -> str:
        """Where the images come from, for the summary line."""
        raise NotImplementedError

    def cache_parts(self) -> dict:
        """Everything besides size and channels that determines the decoded pixels."""
        raise NotImplementedError

    def build(self) -> torch.Tensor:
        """Decodes the source into an (N, C, image_size, image_size) uint8 tensor."""
        raise NotImplementedError

    def class_names(self) -> list[str]:
        """The names of the classes, label i being ``class_names()[i]`` (sources with labels override this)."""
        raise UserError(
            f"Dataset {self.name} has no class labels, so model.conditional=true cannot train on it; use "
            "dataset=mnist, dataset=cifar10 or dataset=imagefolder with one subfolder per class"
        )

    def build_labelled(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Decodes the source into uint8 images and their (N,) int64 class indices (sources with labels)."""
        raise NotImplementedError

    # -- shared machinery --------------------------------------------------------------------------
    def cache_key(self) -> str:
        parts = {
            "source": self.name,
            "size": self.image_size,
            "channels": self.channels,
            **self.cache_parts(),
        }
        if self.symmetries != ["identity"]:
            parts["symmetries"] = self.symmetries
        if self.per_image_normalize:
            parts["per_image_normalize"] = "mean-std-2sigma"
        if self.conditional:  # the cache file holds images and labels: never an images-only file's key
            parts["labels"] = self.class_names()
        return make_key(f"{self.name}-{self.image_size}px-{self.channels}ch", parts)

    def build_dataset(self) -> torch.Tensor | dict[str, torch.Tensor]:
        """:meth:`build`, then the dataset-level augmentations: what is cached (with the labels when conditional)."""
        images, labels = self.build_labelled() if self.conditional else (self.build(), None)
        if self.per_image_normalize:
            images = normalize_per_image(images)
        images = apply_symmetries(images, self.symmetries)
        if labels is None:
            return images
        return {"images": images, "labels": labels.long().repeat(len(self.symmetries))}  # grouped by symmetry

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        self.check_source()
        start = time.perf_counter()
        data = cached_dataset(self.cache_dir, self.cache_key(), self.build_dataset)
        images, labels = (data["images"], data["labels"]) if self.conditional else (data, None)
        if images.size(0) == 0:
            raise UserError(
                f"Dataset {self.name}: no usable images in {self.source()}; check the path and files"
            )
        keep = self.subset_indices(images.size(0))
        if keep is not None:
            images, labels = images[keep], (labels[keep] if labels is not None else None)
        self.on_device = self.choose_on_device(images, labels)
        self.train_set = UInt8ImageDataset(images, indices_only=self.on_device, labels=labels)
        if images.size(0) < self.batch_size and self.drop_last:
            raise UserError(
                f"Dataset {self.name}: {images.size(0)} images in {self.source()} is fewer than "
                f"dataset.batch_size={self.batch_size}; lower the batch size or check dataset.path"
            )
        c, h, w = images.shape[1:]
        log.info(
            "Dataset %s: %d images, %dx%dx%d, from %s (%.1fs)",
            self.name,
            len(self.train_set),
            c,
            h,
            w,
            self.source(),
            time.perf_counter() - start,
        )
        if labels is not None:
            counts = torch.bincount(labels, minlength=len(self.class_names())).tolist()
            log.info(
                "Dataset %s: conditional on %d classes (%s)",
                self.name,
                len(counts),
                ", ".join(f"{name} {count}" for name, count in zip(self.class_names(), counts, strict=True)),
            )

    def subset_indices(self, count: int) -> torch.Tensor | None:
        """The ``subset`` indices drawn without replacement by ``subset_seed`` (None: all, ``subset`` is null)."""
        if self.subset is None:
            return None
        if not 0 < self.subset <= count:
            raise UserError(
                f"dataset.subset={self.subset} must be between 1 and the {count} images of "
                f"{self.source()}, or null for all"
            )
        return subset_indices(count, self.subset, self.subset_seed)

    def train_dataloader(self) -> DataLoader:
        # the sampler yields whole blocks of indices (drop_last is its business): no batching here
        return DataLoader(
            self.train_set,
            batch_size=None,
            sampler=self.train_sampler(),
            num_workers=self.num_workers,
            collate_fn=return_batch,
            pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0,
            generator=torch.Generator(),  # DataLoader draws a base seed per iterator: not from the global RNG
        )

    def train_sampler(self) -> ResumableShuffleSampler:
        """The one shuffling sampler of this data module, made on first use (its seed follows the run's seed).

        Under DDP it takes this rank's share, with rank 0's seed on every rank (their global RNGs differ).
        """
        if self.sampler is None:
            seed = int(torch.randint(0, 2**31 - 1, ()).item())
            world_size, rank = 1, 0
            if self.trainer is not None and self.trainer.world_size > 1:
                world_size, rank = self.trainer.world_size, self.trainer.global_rank
                seed = self.trainer.strategy.broadcast(seed, src=0)
            self.sampler = ResumableShuffleSampler(
                len(self.train_set), self.batch_size, self.drop_last, seed, world_size, rank
            )
            if self._sampler_state is not None:
                self.sampler.load_state_dict(self._sampler_state)
        self.sampler.schedule = self.block_schedule()
        return self.sampler

    def block_schedule(self) -> BlockSchedule:
        """Where training's blocks of batches end: as the model being trained says (its ``block_schedule``),
        else one batch per step."""
        module = self.trainer.lightning_module if self.trainer is not None else None
        schedule = getattr(module, "block_schedule", None)
        return schedule() if callable(schedule) else BlockSchedule()

    def state_dict(self) -> dict:
        """The shuffle seed and the number of batches trained on: where the data order stands."""
        return {"sampler": self.sampler.state_dict()} if self.sampler is not None else {}

    def load_state_dict(self, state_dict: dict) -> None:
        self._sampler_state = state_dict.get("sampler")
        if self.sampler is not None and self._sampler_state is not None:
            self.sampler.load_state_dict(self._sampler_state)

    def preprocess(self, images: torch.Tensor, augment: bool = True) -> torch.Tensor:
        """uint8 (N, C, H, W) on any device -> float in [-1, 1], randomly mirrored when ``hflip``."""
        return real_batch(images, augment and self.hflip)

    def choose_on_device(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> bool:
        """``on_device`` settled for the device training runs on (``"auto"``: :func:`on_device_choice`)."""
        if self.on_device != "auto":
            return bool(self.on_device)
        device = self.trainer.strategy.root_device if self.trainer is not None else torch.device("cpu")
        nbytes = images.nbytes + (labels.nbytes if labels is not None else 0)
        chosen, why = on_device_choice(nbytes, device)
        log.info("dataset.on_device=auto: %s (%s)", "on" if chosen else "off", why)
        return chosen

    def resident(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The whole uint8 dataset (and its labels) on ``device``, copied there on first use."""
        if self._resident is None or self._resident[0].device != device:
            labels = self.train_set.labels
            self._resident = (
                self.train_set.images.to(device),
                labels.to(device) if labels is not None else None,
            )
        return self._resident

    def on_before_batch_transfer(self, batch: Batch, dataloader_idx: int) -> Batch:
        # Lightning calls this once per batch training takes (not per batch prefetched, and not for the
        # real-samples grid, which calls on_after_batch_transfer itself): the sampler's position.
        if self.trainer is not None and self.trainer.training and self.sampler is not None:
            rows = (batch[0] if isinstance(batch, tuple) else batch).size(0)
            self.sampler.batches_consumed += -(-rows // self.batch_size)
        return batch

    def on_after_batch_transfer(self, batch: Batch, dataloader_idx: int) -> Block | Batch:
        """In training, a :class:`Block` (the model turns each batch into floats as it trains on it); outside
        it, the images as training sees them (and their labels)."""
        if self.on_device:  # the batch holds indices into the resident copy
            (images, labels), indices = self.resident(batch.device), batch
        else:
            (images, labels), indices = (batch if self.conditional else (batch, None)), None
        if self.trainer is not None and self.trainer.training:
            return Block(images, indices, labels, self.batch_size, self.hflip)
        # all of it at once, flipped only outside a trainer (as training's real-samples grid and tools want)
        images, labels = Block(images, indices, labels, hflip=self.hflip and self.trainer is None).batch(0)
        return images if labels is None else (images, labels)


class TorchvisionDataModule(ImageDataModule):
    """A torchvision dataset under ``root`` (fetched when missing and ``download``); ``split`` is ``train`` (its
    training set) or ``all`` (training + test sets)."""

    def __init__(self, root: str, download: bool = True, split: str = "train", **kwargs) -> None:
        super().__init__(**kwargs)
        self.root = Path(root).expanduser()
        self.download = download
        if split not in ("train", "all"):
            raise UserError(f"dataset.split={split!r} is not allowed; use 'train' or 'all'")
        self.split = split

    @property
    def train_flags(self) -> list[bool]:
        """torchvision's ``train=`` argument for each set this split reads."""
        return [True] if self.split == "train" else [True, False]


def require_dir(path: str | Path, what: str, how_to_fix: str, key: str = "dataset.path") -> Path:
    """Returns ``path`` as a Path, or raises one clear line (naming the config key) when it is not a folder."""
    path = Path(path).expanduser()
    if not path.is_dir():
        raise UserError(f"{what}: {key}={path} is not a folder (no folder at {path.resolve()}). {how_to_fix}")
    return path


def select_classes(classes: Sequence[str | int], available: Sequence[str], dataset: str) -> list[str]:
    """Class names for a filter given as names or indices into ``available``; one clear line if unknown."""
    selected = []
    for item in classes:
        if isinstance(item, int) or (isinstance(item, str) and item.isdigit() and item not in available):
            index = int(item)
            if not 0 <= index < len(available):
                raise UserError(
                    f"Dataset {dataset}: class index {index} is out of range; dataset.classes takes names "
                    f"or indices 0-{len(available) - 1} of {list(available)}"
                )
            selected.append(available[index])
        elif item in available:
            selected.append(str(item))
        else:
            raise UserError(
                f"Dataset {dataset}: no class {item!r}; dataset.classes takes names or indices of {list(available)}"
            )
    return list(dict.fromkeys(selected))


def fetch_or_fail(dataset: str, where: Path, fix: str, download: bool, fetch: Callable[[], object]) -> None:
    """Runs ``fetch`` (a torchvision download) when allowed; any failure becomes one clear line."""
    if not download:
        raise UserError(f"Dataset {dataset}: not found in {where} and dataset.download=false; {fix}")
    log.info("Dataset %s not found in %s; downloading", dataset, where)
    try:
        fetch()
    except Exception as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise UserError(
            f"Dataset {dataset}: not found in {where} and the download failed ({reason}); {fix}"
        ) from None
