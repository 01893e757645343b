"""Atomic checkpoint writes: a failed write leaves the previous file as it was."""

import pytest
import torch

from dcgan_lit.checkpoint.resume import AtomicCheckpointIO


def test_atomic_checkpoint_write_leaves_the_previous_file_when_it_fails(tmp_path):
    path = tmp_path / "checkpoints" / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"state_dict": {"w": torch.ones(3)}, "global_step": 1}, path)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("disk full")  # fails halfway through writing the new checkpoint

    with pytest.raises(RuntimeError, match="disk full"):
        io.save_checkpoint({"state_dict": {"w": torch.zeros(3)}, "broken": Unpicklable()}, path)
    assert io.load_checkpoint(path)["global_step"] == 1
    assert [p.name for p in path.parent.iterdir()] == ["last.ckpt"]  # no temporary file left behind
