"""A shuffling sampler whose position can be saved and restored, so a resumed run sees the same batches."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler


class ResumableShuffleSampler(Sampler[int]):
    """Each pass over the data is a permutation drawn from ``seed + pass``; iteration starts where training is.

    The data module counts the batches training has consumed (``batches_consumed``, saved in checkpoints).
    A new iterator starts at that batch of that pass, so a run resumed mid-epoch continues with exactly the
    batches the uninterrupted run would have drawn. Its own generator leaves the global RNG untouched.
    """

    def __init__(self, num_samples: int, batch_size: int, drop_last: bool = True, seed: int = 0) -> None:
        self.num_samples = num_samples
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.seed = seed
        self.batches_consumed = 0

    @property
    def batches_per_pass(self) -> int:
        full, rest = divmod(self.num_samples, self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def permutation(self, pass_index: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(self.seed + pass_index)
        return torch.randperm(self.num_samples, generator=generator)

    def __iter__(self) -> Iterator[int]:
        pass_index, batch = divmod(self.batches_consumed, max(self.batches_per_pass, 1))
        yield from self.permutation(pass_index)[batch * self.batch_size :].tolist()

    def __len__(self) -> int:
        # Always a full pass: Lightning sizes every epoch from the first len(); a resumed partial pass just
        # ends early.
        return self.num_samples

    def state_dict(self) -> dict[str, int]:
        return {"seed": self.seed, "batches_consumed": self.batches_consumed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.seed = int(state["seed"])
        self.batches_consumed = int(state["batches_consumed"])
