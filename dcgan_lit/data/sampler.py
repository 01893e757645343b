"""A shuffling sampler whose position can be saved and restored, so a resumed run sees the same batches; it
hands them out in blocks of one or more batches (:class:`~dcgan_lit.batches.BlockSchedule`)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import torch
from torch.utils.data import DistributedSampler

from dcgan_lit.batches import BlockSchedule

log = logging.getLogger(__name__)


class ResumableShuffleSampler(DistributedSampler):
    """Each pass over the data is a permutation drawn from ``seed + pass``; iteration starts where training is.

    It yields blocks: the indices of the consecutive batches one training step takes (``schedule``: one batch
    per block unless set), so the DataLoader that holds it has ``batch_size=None``. Whatever the blocks, the
    batches are the same, in the same order.

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
        self.schedule = BlockSchedule()

    @property
    def batches_per_pass(self) -> int:
        """Batches this rank trains on per pass over the data."""
        full, rest = divmod(self.num_samples, self.batch_size)
        return full + (1 if rest and not self.drop_last_batch else 0)

    def permutation(self, pass_index: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(self.seed + pass_index)
        return torch.randperm(len(self.dataset), generator=generator)

    def __iter__(self) -> Iterator[list[int]]:
        per_pass = max(self.batches_per_pass, 1)
        pass_index, batch = divmod(self.batches_consumed, per_pass)
        share = self.permutation(pass_index)[: self.total_size][self.rank :: self.num_replicas].tolist()
        position, pass_end = self.batches_consumed, (pass_index + 1) * per_pass  # in batches since the start
        while position < pass_end:
            end = self.schedule.block_end(position, pass_end)
            first = (position - pass_index * per_pass) * self.batch_size
            yield share[first : first + (end - position) * self.batch_size]
            position = end

    def __len__(self) -> int:
        # A whole pass in batches, an upper bound on its blocks (Lightning sizes every epoch from the first len();
        # a pass in blocks, or a resumed partial pass, just ends early).
        return self.batches_per_pass

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
