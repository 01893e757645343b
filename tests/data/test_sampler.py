"""The resumable shuffling sampler: resumes inside a pass, reshuffles between passes, shards for DDP, and hands
out blocks of batches where the schedule says."""

import logging

from dcgan_lit.batches import BlockSchedule
from dcgan_lit.data.sampler import ResumableShuffleSampler


def flat(sampler: ResumableShuffleSampler) -> list[int]:
    """The indices the sampler hands out from where it stands, blocks joined."""
    return [index for block in sampler for index in block]


def test_sampler_resumes_inside_a_pass_and_reshuffles_between_passes():
    sampler = ResumableShuffleSampler(num_samples=10, batch_size=3, drop_last=True, seed=5)
    first_pass = flat(sampler)
    # three whole batches (the tail image dropped), one block each; len() counts batches
    assert len(first_pass) == 9 and len(set(first_pass)) == 9 and len(sampler) == 3
    assert [len(block) for block in sampler] == [3, 3, 3]
    assert first_pass == sampler.permutation(0)[:9].tolist()
    sampler.batches_consumed = 2  # two batches of the first pass trained
    assert flat(sampler) == first_pass[6:]
    sampler.batches_consumed = 3  # a pass is 3 whole batches (drop_last): the next pass starts
    second_pass = flat(sampler)
    assert len(second_pass) == 9 and second_pass != first_pass
    restored = ResumableShuffleSampler(num_samples=10, batch_size=3)
    restored.load_state_dict(sampler.state_dict())
    assert flat(restored) == second_pass


def test_a_partial_last_batch_is_kept_when_asked():
    sampler = ResumableShuffleSampler(num_samples=10, batch_size=3, drop_last=False, seed=5)
    assert [len(block) for block in sampler] == [3, 3, 3, 1] and len(sampler) == 4
    assert sorted(flat(sampler)) == list(range(10))


def test_blocks_end_at_the_schedules_iterations_and_hold_the_same_batches():
    one_per_step = ResumableShuffleSampler(num_samples=40, batch_size=2, seed=1)  # 20 batches per pass
    blocks = ResumableShuffleSampler(num_samples=40, batch_size=2, seed=1)
    # 4 per step, cut at multiples of 6 (a period) and at iteration 25 (the last), and at each pass's end
    blocks.schedule = BlockSchedule.of(4, [6, None, 0], last=25)
    assert blocks.schedule.periods == (6,)  # null and 0 (off) cut nothing
    assert BlockSchedule.of(4, [1]).block_end(0, 20) == 1  # something every iteration: one per step
    sizes = [len(block) // 2 for block in blocks]
    ends = [sum(sizes[: i + 1]) for i in range(len(sizes))]
    assert ends == [4, 6, 8, 12, 16, 18, 20]  # within the first pass of 20 batches
    assert flat(blocks) == flat(one_per_step)
    # from a resumed position in the middle of a block, and across a pass's end, to the last iteration
    blocks.batches_consumed = one_per_step.batches_consumed = 19
    sizes = [len(block) // 2 for block in blocks]
    assert sizes == [1]  # the pass ends at 20
    blocks.batches_consumed = one_per_step.batches_consumed = 21
    sizes = [len(block) // 2 for block in blocks]
    assert [21 + sum(sizes[: i + 1]) for i in range(len(sizes))] == [24, 25, 28, 30, 32, 36, 40]
    assert flat(blocks) == flat(one_per_step)


def test_ddp_ranks_take_disjoint_shares_of_the_same_pass_and_resume_on_other_device_counts(caplog):
    whole = ResumableShuffleSampler(num_samples=11, batch_size=2, seed=3)
    ranks = [ResumableShuffleSampler(11, 2, seed=3, num_replicas=2, rank=r) for r in (0, 1)]
    shares = [flat(r) for r in ranks]
    assert [len(r) for r in ranks] == [2, 2] and [r.batches_per_pass for r in ranks] == [2, 2]
    order = whole.permutation(0)[:10]
    assert shares == [order[0:8:2].tolist(), order[1:8:2].tolist()]  # disjoint, whole batches of each share
    for r in ranks:
        r.batches_consumed = 3  # one pass (2 batches) and one batch of the next
    assert [flat(r) for r in ranks] == [whole.permutation(1)[i:10:2][2:4].tolist() for i in (0, 1)]

    # a 2-rank checkpoint resumed on one device: the same place of the same pass (4 of 10 images seen)
    single = ResumableShuffleSampler(11, 2, seed=0)
    with caplog.at_level(logging.WARNING):
        single.load_state_dict(ranks[0].state_dict())
    assert single.seed == 3 and single.batches_consumed == 5 + 2
    assert flat(single) == whole.permutation(1)[4:10].tolist()
    assert "global batch of 2 images instead of 4" in caplog.text
