"""The resumable shuffling sampler: resumes inside a pass, reshuffles between passes, shards for DDP."""

import logging

from dcgan_lit.data.sampler import ResumableShuffleSampler


def test_sampler_resumes_inside_a_pass_and_reshuffles_between_passes():
    sampler = ResumableShuffleSampler(num_samples=10, batch_size=3, drop_last=True, seed=5)
    first_pass = list(sampler)
    assert sorted(first_pass) == list(range(10)) and len(sampler) == 10
    sampler.batches_consumed = 2  # two batches of the first pass trained
    assert list(sampler) == first_pass[6:]
    sampler.batches_consumed = 3  # a pass is 3 whole batches (drop_last): the next pass starts
    second_pass = list(sampler)
    assert sorted(second_pass) == list(range(10)) and second_pass != first_pass
    restored = ResumableShuffleSampler(num_samples=10, batch_size=3)
    restored.load_state_dict(sampler.state_dict())
    assert list(restored) == second_pass


def test_ddp_ranks_take_disjoint_shares_of_the_same_pass_and_resume_on_other_device_counts(caplog):
    whole = ResumableShuffleSampler(num_samples=11, batch_size=2, seed=3)
    ranks = [ResumableShuffleSampler(11, 2, seed=3, num_replicas=2, rank=r) for r in (0, 1)]
    shares = [list(r) for r in ranks]
    assert [len(r) for r in ranks] == [5, 5] and [r.batches_per_pass for r in ranks] == [2, 2]
    assert shares == [list(whole)[0:10:2], list(whole)[1:10:2]]  # disjoint, the tail image dropped
    for r in ranks:
        r.batches_consumed = 3  # one pass (2 batches) and one batch of the next
    assert [list(r) for r in ranks] == [whole.permutation(1)[i:10:2][2:].tolist() for i in (0, 1)]

    # a 2-rank checkpoint resumed on one device: the same place of the same pass (4 of 10 images seen)
    single = ResumableShuffleSampler(11, 2, seed=0)
    with caplog.at_level(logging.WARNING):
        single.load_state_dict(ranks[0].state_dict())
    assert single.seed == 3 and single.batches_consumed == 5 + 2
    assert list(single) == whole.permutation(1)[4:].tolist()
    assert "global batch of 2 images instead of 4" in caplog.text
