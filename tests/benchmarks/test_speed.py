"""benchmarks/speed.py's mechanics on tiny problems: the bare loop is DCGAN.adversarial_step, the rows and
bench.json, the reference loader on a flat folder, the data check. Nothing here asserts a speed."""

import copy
import json

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import open_dict

import benchmarks.speed as speed
from benchmarks import classic
from dcgan_lit.errors import UserError
from dcgan_lit.model.module import DCGAN
from tests.helpers.config import CONF_DIR
from tests.helpers.images import write_images
from tests.helpers.model import snapshot, tiny_model

ROW_KEYS = {
    "device",
    "size",
    "batch",
    "data",
    "precision",
    "options",
    "rounds",
    "ours_img_s",
    "ours_callbacks_off_img_s",
    "reference_img_s",
    "ratio",
    "bare_step_img_s",
    "ours_vs_bare",
    "ours_callbacks_off_vs_bare",
    "ours_vs_bare_cpu",
    "ours_callbacks_off_vs_bare_cpu",
    "seconds_per_iteration",
    "gflops_per_image",
    "peak_gflops",
    "peak_dtype",
    "fraction_of_peak",
}


@pytest.fixture
def bench_cfg(tmp_path):
    """Factory: conf/benchmarks/speed.yaml on 32-pixel synthetic data, batch 4, 1 + 2 iterations."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):

        def make(*extra: str):
            overrides = ["sizes=[32]", "data=synthetic", "batch_size=4", "warmup=1", "iterations=2"]
            cfg = compose(config_name="benchmarks/speed", overrides=[*overrides, *extra])
            with open_dict(cfg):
                cfg.paths.output_dir = str(tmp_path)
            return cfg

        yield make
    GlobalHydra.instance().clear()


def test_the_bare_iteration_is_one_adversarial_step():
    """From the same weights and seed, the bare loop's iteration and DCGAN.adversarial_step end with the
    same G and D, and both networks changed."""
    torch.manual_seed(0)
    bare = tiny_model()
    step = copy.deepcopy(bare)
    g0, d0 = snapshot(bare.generator), snapshot(bare.discriminator)
    real = torch.rand(4, 3, 32, 32) * 2 - 1
    opt_d, opt_g = bare.configure_optimizers()
    torch.manual_seed(1)
    speed.bare_iteration(bare, opt_d, opt_g, real)
    opt_d, opt_g = step.configure_optimizers()
    torch.manual_seed(1)
    step.adversarial_step(real, opt_d, opt_g)
    for name, net in (("generator", bare.generator), ("discriminator", bare.discriminator)):
        other = dict(getattr(step, name).named_parameters())
        before = g0 if name == "generator" else d0
        assert any(not torch.equal(before[k], v) for k, v in net.named_parameters()), name
        for key, value in net.named_parameters():
            assert torch.equal(value, other[key]), (name, key)


def test_time_bare_counts_one_iteration_then_times_warmup_plus_iterations(bench_cfg, monkeypatch):
    calls = []
    original = DCGAN.adversarial_step

    def recording(self, real, opt_d, opt_g, *args, **kwargs):
        calls.append(tuple(real.shape))
        return original(self, real, opt_d, opt_g, *args, **kwargs)

    monkeypatch.setattr(DCGAN, "adversarial_step", recording)
    durations, flops_per_image, cpu_durations = speed.time_bare(bench_cfg(), 32, torch.device("cpu"))
    assert calls == [(4, 3, 32, 32)] * (1 + 1 + 2)  # the counted one, 1 warm-up, 2 timed
    assert len(durations) == len(cpu_durations) == 2 and all(t > 0 for t in cpu_durations)
    # dcgan32 at 3 channels: D forward ~0.04 GFLOP, G forward ~0.1 GFLOP per image; one iteration is
    # 3 D forwards + 1 G forward and their backwards (about twice the forward): a few tenths of a GFLOP.
    assert 0.2e9 < flops_per_image < 0.6e9


def test_the_reference_loader_reads_a_flat_folder_and_class_subfolders(bench_cfg, tmp_path):
    flat = tmp_path / "flat"
    write_images(flat, 6, size=(40, 48), seed=1, ext="jpg")
    cfg = bench_cfg("data=catfaces", f"data_path={flat}", "batch_size=2", "reference_workers=0")
    dataset = speed.reference_loader(cfg, 32).dataset
    assert isinstance(dataset, classic.FlatImageFolder) and len(dataset) == 6
    image, label = dataset[0]
    assert image.shape == (3, 32, 32) and label == 0
    assert -1 <= image.min() < image.max() <= 1
    classes = tmp_path / "classes"
    write_images(classes / "cats", 4, seed=2)
    cfg = bench_cfg("data=catfaces", f"data_path={classes}", "batch_size=2", "reference_workers=0")
    loader = speed.reference_loader(cfg, 32)
    assert not isinstance(loader.dataset, classic.FlatImageFolder) and len(loader.dataset) == 4
    batch, _ = next(iter(loader))
    assert batch.shape == (2, 3, 32, 32)


@pytest.mark.slow
def test_the_reference_loop_trains_on_a_flat_folder(bench_cfg, tmp_path):
    flat = tmp_path / "flat"
    write_images(flat, 8, size=(40, 48), seed=1, ext="jpg")
    cfg = bench_cfg("data=catfaces", f"data_path={flat}", "batch_size=2", "reference_workers=0", "warmup=0")
    assert len(speed.time_reference(cfg, 32, torch.device("cpu"))) == 2


def test_missing_or_unknown_data_is_one_line(bench_cfg, tmp_path):
    absent = tmp_path / "absent"
    with pytest.raises(UserError) as error:
        speed.check_data(bench_cfg("data=catfaces", f"data_path={absent}"))
    message = str(error.value)
    assert "\n" not in message and str(absent) in message and "data=synthetic" in message
    with pytest.raises(UserError, match="data=imagenet is unknown; use catfaces or synthetic"):
        speed.check_data(bench_cfg("data=imagenet"))
    speed.check_data(bench_cfg(f"data_path={absent}"))  # synthetic data need no folder


@pytest.mark.slow
def test_bench_writes_one_row_per_size_to_the_table_and_bench_json(bench_cfg, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(
        speed, "matmul_peak_flops", lambda device, n=2048, dtype=None: 1e12
    )  # not what is tested here
    cfg = bench_cfg(
        "memory.enabled=false",
        f"out={tmp_path / 'out' / 'bench.json'}",
        "train_overrides=['trainer.log_every_n_steps=2']",  # a row logged within the few iterations run
    )
    speed.bench(cfg)
    written = json.loads((tmp_path / "out" / "bench.json").read_text())
    assert written["memory"] is None
    [row] = written["throughput"]
    assert set(row) == ROW_KEYS
    assert (row["size"], row["batch"], row["data"], row["precision"]) == (32, 4, "synthetic", "32-true")
    assert row["peak_gflops"] == 1000.0
    assert row["device"] == f"cpu x{torch.get_num_threads()}"
    # ours as a user runs it wrote the CSV log; with callbacks off there is no log
    assert (tmp_path / "ours-32px-user" / "csv" / "metrics.csv").is_file()
    assert not (tmp_path / "ours-32px-off" / "csv").exists()
    times = row["seconds_per_iteration"]
    assert [len(times[k]) for k in ("bare", "user", "off", "bare_cpu", "user_cpu", "off_cpu")] == [1] * 6
    assert row["ours_vs_bare"] == pytest.approx(times["user"][0] / times["bare"][0])
    out = capsys.readouterr().out
    assert "dcgan-lit training throughput" in out and f"wrote {tmp_path / 'out' / 'bench.json'}" in out
    assert f"{row['ratio']:.2f}x" in out and f"{row['gflops_per_image']:.2f}" in out


def test_the_timer_gives_seconds_per_iteration_of_each_step_after_the_warm_up():
    timer = speed.IterationTimer()
    timer.steps = [(1.0, 2), (0.5, 1), (3.0, 10), (0.0, 0)]
    timer.cpu_steps = [(2.0, 2), (1.0, 1), (3.0, 10), (0.0, 0)]
    assert timer.per_iteration(warmup=0) == [0.5, 0.5, 0.3]
    assert timer.per_iteration(warmup=3) == [0.3]  # the steps that start after 3 iterations
    assert timer.per_iteration(warmup=0, cpu=True) == [1.0, 1.0, 0.3]
