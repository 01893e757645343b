"""``@RunIf(cuda=True)``: a test that needs hardware this machine may lack is marked and skipped in one line."""

from __future__ import annotations

import pytest
import torch


def RunIf(cuda: bool = False, min_cuda_memory_gb: float = 0.0):  # noqa: N802 - a decorator named like a marker
    """Marks the test ``gpu`` (``pytest -m gpu`` runs these alone) and skips it when the condition fails."""
    reasons = []
    if cuda and not torch.cuda.is_available():
        reasons.append("no CUDA device")
    elif (
        cuda
        and min_cuda_memory_gb
        and torch.cuda.get_device_properties(0).total_memory < min_cuda_memory_gb * 2**30
    ):
        reasons.append(f"less than {min_cuda_memory_gb} GB on the CUDA device")

    def mark(test):
        test = pytest.mark.gpu(test) if cuda else test
        return pytest.mark.skipif(bool(reasons), reason="; ".join(reasons) or "runs")(test)

    return mark
