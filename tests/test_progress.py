"""dcgan_lit.progress.watch: log lines in a log file, the items unchanged."""

import logging

from dcgan_lit.progress import duration, watch


def test_watch_logs_counts_rate_and_eta_off_a_terminal(caplog):
    with caplog.at_level(logging.INFO, logger="dcgan_lit.progress"):
        items = list(
            watch(range(10), "FID fakes", 10, per_item=100, unit="images", interval_seconds=0, terminal=False)
        )
    assert items == list(range(10))
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 9  # after every item but the last
    assert lines[0].startswith("FID fakes: 100/1,000 images (10%), ") and " images/s, ETA " in lines[0]
    assert lines[-1].startswith("FID fakes: 900/1,000 images (90%)")


def test_little_work_shows_nothing_and_durations_read_as_clock_times(caplog):
    with caplog.at_level(logging.INFO, logger="dcgan_lit.progress"):
        assert list(watch(range(3), "small", 3, interval_seconds=0, terminal=False)) == [0, 1, 2]
    assert not caplog.records
    assert duration(3723) == "1:02:03" and duration(float("inf")) == "?"
