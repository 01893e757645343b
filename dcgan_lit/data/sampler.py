"""A shuffling sampler whose position can be saved and restored, so a resumed run sees the same batches."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import torch
from torch.utils.data import DistributedSampler

log = logging.getLogger(__name__)


class ResumableShuffleSampler(DistributedSampler):
    """Each pass over the data is a permutation drawn from ``seed + pass``; iteration starts where training is.

    The data module counts the batches training has consumed (``batches_consumed``, saved in checkpoints).
    A new iterator starts at that batch of that pass, so a run resumed mid-epoch continues with exactly the
    batches the uninterrupted run would have drawn. Its own generator leaves the global RNG untouched.

    Under DDP every rank holds one with the same seed and takes every ``num_replicas``-th index of the pass's
    permutation from ``rank`` on (shares of equal length, the tail dropped), so the ranks' batches are disjoint
    and a pass is the same permutation for any number of ranks. Being a ``DistributedSampler``, it is left in
    place by Lightning, which would otherwise wrap it in one that shards a re-shuffled copy.
    """

    def __init__(
        self,
        num_samples: int,
        batch_size: int,
        drop_last: bool = True,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
    ) -> None:
        # DistributedSampler's own drop_last: equal shares per rank (DDP ranks must run as many batches)
        super().__init__(range(num_samples), num_replicas, rank, shuffle=True, seed=seed, drop_last=True)
        self.batch_size = batch_size
        self.drop_last_batch = drop_last
        self.batches_consumed = 0

    @property
    def batches_per_pass(self) -> int:
        """Batches this rank trains on per pass over the data."""
        full, rest = divmod(self.num_samples, self.batch_size)
        return full + (1 if rest and not self.drop_last_batch else 0)

    def permutation(self, pass_index: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(self.seed + pass_index)
        return torch.randperm(len(self.dataset), generator=generator)

    def __iter__(self) -> Iterator[int]:
        pass_index, batch = divmod(self.batches_consumed, max(self.batches_per_pass, 1))
        share = self.permutation(pass_index)[: self.total_size][self.rank :: self.num_replicas]
        yield from share[batch * self.batch_size :].tolist()

    def __len__(self) -> int:
        # Always this rank's whole share: Lightning sizes every epoch from the first len(); a resumed partial
        # pass just ends early.
        return self.num_samples

    def state_dict(self) -> dict[str, int]:
        return {
            "seed": self.seed,
            "batches_consumed": self.batches_consumed,
            "batches_per_pass": self.batches_per_pass,
            "global_batch_size": self.batch_size * self.num_replicas,
        }

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.seed = int(state["seed"])
        self.batches_consumed = int(state["batches_consumed"])
        global_batch = state.get("global_batch_size", self.batch_size * self.num_replicas)
        if global_batch != self.batch_size * self.num_replicas:
            # another batch size or number of devices: continue at the same place in the same pass
            pass_index, batch = divmod(self.batches_consumed, max(int(state["batches_per_pass"]), 1))
            seen = batch * global_batch // (self.batch_size * self.num_replicas)
            in_pass = min(seen, max(self.batches_per_pass - 1, 0))
            self.batches_consumed = pass_index * self.batches_per_pass + in_pass
            log.warning(
                "Resuming with a global batch of %d images instead of %d (batch size x devices): the data "
                "order continues at the same place of pass %d, but losses will not match the original run's",
                self.batch_size * self.num_replicas,
                global_batch,
                pass_index,
            )
