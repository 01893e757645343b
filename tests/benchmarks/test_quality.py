"""benchmarks/quality.py's mechanics on a tiny folder: rows, points, tables, grids, resuming, refusals.
Nothing here asserts a quality; the tiny feature network stands in for the Inception."""

import copy
import json
import logging
import signal
import types
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate
from omegaconf import OmegaConf

import benchmarks.quality as quality
import benchmarks.quality_results as results
from benchmarks import gpu_parts
from dcgan_lit.api import load_generator
from dcgan_lit.checkpoint.io import read_weights_only
from dcgan_lit.data.images import decode_images
from dcgan_lit.errors import UserError, exit_on_user_error
from dcgan_lit.model.networks import Generator
from dcgan_lit.run.config import validate
from tests.helpers.config import CONF_DIR
from tests.helpers.images import write_images

TINY_RUN = [
    "batch_size=4",
    "iterations=4",
    "evaluate_every=2",
    "seeds=[0]",
    "workers=0",
    "grid=4",
    "metrics.fid.feature_extractor=tiny",
    "metrics.fid.num_fake=16",
    "metrics.fid.num_real=null",
    "train_overrides=['model.ngf=8','model.ndf=8']",
]


@pytest.fixture
def folder(tmp_path):
    for name, seed in (("cat", 1), ("dog", 2)):
        write_images(tmp_path / "data" / name, 10, size=(32, 32), seed=seed)
    return tmp_path / "data"


@pytest.fixture
def quality_cfg(tmp_path, folder):
    """Factory: conf/benchmarks/quality.yaml on the tiny folder, 4 iterations scored every 2."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):

        def make(*extra: str, out: str = "out"):
            overrides = [
                f"data_path={folder}",
                f"out_dir={tmp_path / out}",
                f"paths.cache_dir={tmp_path / 'cache'}",
                *TINY_RUN,
                *extra,
            ]
            return compose(config_name="benchmarks/quality", overrides=overrides)

        yield make
    GlobalHydra.instance().clear()


def test_every_row_is_trained_scored_and_drawn_at_the_same_iterations(quality_cfg, tmp_path):
    cfg = quality_cfg("rows=[classic,paper]")
    points = quality.benchmark(cfg)
    assert sorted((p["row"], p["iteration"]) for p in points) == [
        ("classic", 2),
        ("classic", 4),
        ("paper", 2),
        ("paper", 4),
    ]
    assert all(p["fid"] > 0 and p["train_seconds"] > 0 for p in points)
    out = tmp_path / "out"
    saved = json.loads((out / "quality.json").read_text())
    assert saved["points"] == points
    assert saved["protocol"]["num_fake"] == 16 and saved["protocol"]["num_real"] == 20
    assert saved["protocol"]["recipes"] == {"classic": "classic", "paper": []}
    table = (out / "quality.md").read_text()
    assert "FID of 16 fakes against 20 real training images, tiny-16d-seed0" in table
    # two points of each row, and each row's whole curve
    assert table.count("\n| classic |") == 3 and table.count("\n| paper |") == 3
    assert (out / "fid.png").stat().st_size > 0
    for row in ("classic", "paper"):
        assert (out / f"{row}-seed0" / "samples_000004.png").is_file()
    # the runs' saved states are where their iteration counts say
    assert read_weights_only(out / "classic-seed0" / "classic.pt")["iteration"] == 4
    assert read_weights_only(out / "paper-seed0" / "last.ckpt")["global_step"] == 8  # D and G steps


def test_a_rerun_resumes_and_a_longer_one_continues_exactly(quality_cfg, monkeypatch):
    """Stopped after 2 iterations then run to 4, a recipe row ends with the weights of one 4-iteration run
    (the checkpoint carries the data order and RNG states); the finished points are never retrained."""
    straight = quality.benchmark(quality_cfg("rows=[paper]", out="straight"))
    quality.benchmark(quality_cfg("rows=[paper]", "iterations=2", out="staged"))
    staged = quality.benchmark(quality_cfg("rows=[paper]", out="staged"))
    assert [p["fid"] for p in staged] == pytest.approx([p["fid"] for p in straight])

    def weights(out):
        state = read_weights_only(out / "paper-seed0" / "last.ckpt")["state_dict"]
        return {k: v for k, v in state.items() if k.startswith("generator.")}

    root = Path(quality_cfg().out_dir).parent
    a, b = weights(root / "straight"), weights(root / "staged")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    def no_training(*args, **kwargs):
        raise AssertionError("a finished point was trained again")

    monkeypatch.setattr(quality.RecipeRun, "train_until", no_training)
    assert quality.benchmark(quality_cfg("rows=[paper]", out="staged")) == staged


def test_a_subset_is_scored_against_the_full_set_and_itself(quality_cfg):
    cfg = quality_cfg("rows=[classic,paper]", "subset=8", "iterations=2")
    points = quality.benchmark(cfg)
    assert all("fid_subset" in p and p["fid_subset"] > 0 for p in points)
    assert {p["row"] for p in points} == {"classic", "paper"}
    assert all(-1 <= p["d_gap"] <= 1 for p in points)  # D's gap on the 8 images it trains on, every point
    assert "| d_gap |" in (Path(cfg.out_dir) / "quality.md").read_text()


def test_an_adaptive_rows_points_record_its_augmentation_probability(quality_cfg):
    ada = "+recipes.ada=['augment=diffaugment','model.ada.target=0.5','model.ada.interval=1','model.ada.speed_images=16']"
    cfg = quality_cfg("rows=[paper,ada]", ada)
    points = {(p["row"], p["iteration"]): p for p in quality.benchmark(cfg)}
    assert all("augment_p" not in points["paper", i] for i in (2, 4))  # no adaptive augmentation to report
    assert all("d_gap_seen" not in points["paper", i] for i in (2, 4))  # D sees the images themselves
    assert all(-1 <= points["ada", i]["d_gap_seen"] <= 1 for i in (2, 4))  # and, augmented, what D sees
    state = read_weights_only(Path(cfg.out_dir) / "ada-seed0" / "last.ckpt")["state_dict"]
    # the run's p at the point
    assert points["ada", 4]["augment_p"] == pytest.approx(float(state["augment.p"]))
    assert all(0 <= points["ada", i]["augment_p"] <= 1 for i in (2, 4))
    assert "| augment_p |" in (Path(cfg.out_dir) / "quality.md").read_text()
    assert "| d_gap_seen |" in (Path(cfg.out_dir) / "quality.md").read_text()


def test_d_gap_is_d_s_confidence_on_the_training_images_minus_on_fakes_and_moves_no_statistics():
    class Fakes(torch.nn.Module):  # G: every image black
        latent_dim = 4

        def forward(self, z):
            return -torch.ones(z.size(0), 3, 2, 2)

    class Judge(torch.nn.Module):  # D: sure that bright images are real, with a BatchNorm to watch
        def __init__(self):
            super().__init__()
            self.norm = torch.nn.BatchNorm2d(3)

        def forward(self, x):
            self.norm(x)
            return 100 * x.mean(dim=(1, 2, 3))

    judge, real = Judge(), torch.full((10, 3, 2, 2), 255, dtype=torch.uint8)
    assert quality.d_gap((Fakes(), judge), real, 4, "cpu") == pytest.approx(1.0)
    assert quality.d_gap((Fakes(), judge), torch.zeros_like(real), 4, "cpu") == pytest.approx(0.0)
    assert judge.norm.num_batches_tracked == 0 and torch.equal(judge.norm.running_mean, torch.zeros(3))


def test_d_gap_with_the_runs_augmentation_judges_what_d_sees_seeded_and_leaves_the_random_state_alone():
    class Fakes(torch.nn.Module):  # G: every image black
        latent_dim = 4

        def forward(self, z):
            return -torch.ones(z.size(0), 3, 2, 2)

    class Judge(torch.nn.Module):  # D: sure that bright images are real
        def forward(self, x):
            return 100 * x.mean(dim=(1, 2, 3))

    class Darken(torch.nn.Module):  # an augmentation that blacks out a random half of the images
        def forward(self, x):
            return torch.where(torch.rand(x.size(0), 1, 1, 1) < 0.5, -torch.ones_like(x), x)

    real = torch.full((64, 3, 2, 2), 255, dtype=torch.uint8)
    networks = (Fakes(), Judge())
    assert quality.d_gap(networks, real, 16, "cpu", torch.nn.Identity()) == pytest.approx(1.0)
    state = torch.get_rng_state()
    seen = quality.d_gap(networks, real, 16, "cpu", Darken())
    assert 0.2 < seen < 0.8  # the blacked-out real images look like the fakes to D
    assert quality.d_gap(networks, real, 16, "cpu", Darken()) == seen  # the same draws every time
    assert torch.equal(torch.get_rng_state(), state)  # training's random state is not moved


def test_the_classic_subset_is_the_datamodules_subset(quality_cfg):
    """The same 8 images for both loops: the classic loop's files are the datamodule's subset, in its order."""
    cfg = quality_cfg("subset=8")
    classic_run = quality.ClassicRun(cfg, 0, Path(cfg.out_dir), torch.device("cpu"))
    decoded, _ = decode_images(classic_run.dataset.files, 32, 3)
    run = quality.RecipeRun(cfg, [], 0, Path(cfg.out_dir), torch.device("cpu"))
    datamodule = instantiate(run.run_cfg.dataset)
    datamodule.setup("fit")
    assert torch.equal(decoded, datamodule.train_set.images)


def test_bad_settings_are_one_line_before_training(quality_cfg, tmp_path):
    with pytest.raises(UserError, match="rows \\['fancy'\\] are not in recipes"):
        quality.benchmark(quality_cfg("rows=[fancy]"))
    with pytest.raises(UserError, match="must be a multiple of evaluate_every"):
        quality.benchmark(quality_cfg("iterations=5"))
    with pytest.raises(UserError, match="no images at data_path"):
        quality.benchmark(quality_cfg(f"data_path={tmp_path / 'nothing'}"))


def test_a_recipe_that_does_not_compose_is_one_line_before_any_row_trains(quality_cfg, monkeypatch):
    trained = []
    monkeypatch.setattr(quality.RecipeRun, "train_until", lambda run, it: trained.append(it))
    cfg = quality_cfg("rows=[paper,typo]", "+recipes.typo=['model.fancy=1']")
    with pytest.raises(UserError, match=r"recipes.typo does not compose \(Could not override 'model.fancy'"):
        quality.benchmark(cfg)
    assert trained == []


def test_every_shipped_recipe_row_composes_into_a_valid_training(quality_cfg):
    """The rows of conf/benchmarks/quality.yaml stay in step with the configs they override."""
    cfg = quality_cfg()
    for row, recipe in cfg.recipes.items():
        run_cfg = quality.recipe_config(cfg, list(recipe), 0, Path(cfg.out_dir), torch.device("cpu"))
        validate(run_cfg)
        for override in recipe:  # each override took effect (a group choice shows in its own keys)
            key, value = override.split("=", 1)
            if "." in key:
                found = (
                    str(OmegaConf.select(run_cfg, key)).lower().replace(" ", "")
                )  # lists print with spaces
                assert found == value.lower(), (row, override)


def test_results_of_another_protocol_are_not_mixed(quality_cfg):
    quality.benchmark(quality_cfg("rows=[paper]", "iterations=2"))
    with pytest.raises(UserError, match="another protocol \\(num_fake 16 -> 12\\)"):
        quality.benchmark(quality_cfg("rows=[paper]", "metrics.fid.num_fake=12"))
    with pytest.raises(UserError, match="row paper was \\[\\] .* now \\['gan.loss=hinge'\\]"):
        quality.benchmark(quality_cfg("rows=[paper]", "recipes.paper=['gan.loss=hinge']"))


def test_summary_gives_the_mean_and_spread_over_seeds():
    points = [
        {"row": "paper", "seed": 0, "iteration": 10, "fid": 50.0, "train_seconds": 60},
        {"row": "paper", "seed": 1, "iteration": 10, "fid": 54.0, "train_seconds": 120},
    ]
    (entry,) = results.summary(points, batch_size=64)
    assert entry["fid"] == 52.0 and (entry["fid_min"], entry["fid_max"]) == (50.0, 54.0)
    assert entry["train_minutes"] == 1.5 and entry["seeds"] == [0, 1]
    assert entry["batch_size"] == 64  # points that do not say trained at the benchmark's batch
    assert results.spread(entry, "fid") == "52.0 (50.0-54.0)"
    points[1]["fid_final"] = 45.0  # scored again on one seed only: no spread to show
    (entry,) = results.summary(points, batch_size=64)
    assert results.spread(entry, "fid_final") == "45.0" and results.spread(entry, "fid") == "52.0 (50.0-54.0)"


def test_a_recipe_with_its_own_batch_is_recorded_and_shown_in_the_table(quality_cfg):
    cfg = quality_cfg()
    own = quality.RecipeRun(cfg, ["dataset.batch_size=8"], 0, Path(cfg.out_dir), torch.device("cpu"))
    same = quality.RecipeRun(cfg, [], 0, Path(cfg.out_dir), torch.device("cpu"))
    assert (own.batch_size, same.batch_size) == (8, cfg.batch_size) == (8, 4)
    protocol = {
        "data": "d", "train_images": "all", "image_size": 32, "batch_size": 4, "num_fake": 16,
        "num_real": 16, "features": "f", "device": "cpu x1",
    }  # fmt: skip
    points = [
        {"row": "paper", "seed": 0, "iteration": 10, "fid": 50.0, "train_seconds": 6},
        {"row": "big", "seed": 0, "iteration": 10, "batch_size": 8, "fid": 40.0, "train_seconds": 9},
    ]
    table = results.markdown_table(points, protocol)
    assert "| row | batch | iterations |" in table and "not train at batch 4" in table
    assert "| big | 8 | 10 | 0 | 40.0 |" in table and "| paper | 4 | 10 | 0 | 50.0 |" in table
    # one batch for every row: no column
    assert "batch |" not in results.markdown_table(points[:1], protocol)


def test_the_best_recipe_row_is_the_experiment_on_the_benchmarks_data(quality_cfg, folder):
    """`experiment=cifar10_best` brings its recipe, but the benchmark's data, batch and seed win."""
    cfg = quality_cfg()
    run_cfg = quality.recipe_config(cfg, list(cfg.recipes.best), 3, Path(cfg.out_dir), torch.device("cpu"))
    assert run_cfg.dataset._target_.endswith("ImageFolderDataModule") and run_cfg.dataset.path == str(folder)
    assert run_cfg.dataset.batch_size == 4 and run_cfg.seed == 3
    assert run_cfg.model.ema.decay is not None  # the recipe's own settings are there
    # the experiment is exactly the measured `fast_ema999w_bn` row: the same training, whatever the tags say
    measured = quality.recipe_config(
        cfg, list(cfg.recipes.fast_ema999w_bn), 3, Path(cfg.out_dir), torch.device("cpu")
    )
    for section in ("model", "dataset", "gan", "augment"):
        assert run_cfg[section] == measured[section], section
    length = ("max_steps", "max_epochs")  # the benchmark sets the run's length itself
    assert {k: v for k, v in run_cfg.trainer.items() if k not in length} == {
        k: v for k, v in measured.trainer.items() if k not in length
    }


def test_final_fakes_score_the_last_iteration_again_and_a_rerun_adds_them_without_training(
    quality_cfg, monkeypatch, caplog
):
    straight = quality.benchmark(quality_cfg("rows=[classic,paper]", "final_fakes=24", out="straight"))
    first, last = [p for p in straight if p["row"] == "paper"]
    assert "fid_final" not in first and last["final_fakes"] == 24
    assert last["fid_final"] > 0 and last["fid_final"] != pytest.approx(last["fid"])  # 24 fakes, not 16
    table = (Path(quality_cfg().out_dir).parent / "straight" / "quality.md").read_text()
    assert "| fid_final |" in table and "scored again with 24 fakes" in table

    cfg = quality_cfg("rows=[classic,paper]", out="later")
    assert not any("fid_final" in p for p in quality.benchmark(cfg))  # none asked for
    for run in (quality.RecipeRun, quality.ClassicRun):
        monkeypatch.setattr(run, "train_until", lambda *a: pytest.fail("trained again"))
    later = quality.benchmark(quality_cfg("rows=[classic,paper]", "final_fakes=24", out="later"))
    assert [p.get("fid_final") for p in later] == pytest.approx([p.get("fid_final") for p in straight])
    assert load_points(cfg) == later
    # iterations=2 on runs saved at 4: their state is not the last point's, so nothing is scored, and it says so
    with caplog.at_level("WARNING", logger="benchmarks.quality"):
        shorter = quality.benchmark(
            quality_cfg("rows=[paper]", "iterations=2", "final_fakes=24", out="later")
        )
    assert "fid_final" not in next(p for p in shorter if p["row"] == "paper" and p["iteration"] == 2)
    assert "paper seed 0: its saved state is at iteration 4, not 2" in caplog.text
    with pytest.raises(UserError, match="final_fakes=1 must be a whole number"):
        quality.benchmark(quality_cfg("rows=[paper]", "final_fakes=1"))


def test_a_time_limit_stops_between_stages_and_a_rerun_goes_on(quality_cfg):
    assert quality.benchmark(quality_cfg("rows=[paper]", "time_limit_minutes=0")) == []
    assert len(quality.benchmark(quality_cfg("rows=[paper]"))) == 2


def test_a_stage_trained_but_not_scored_before_a_stop_is_scored_on_resume(quality_cfg, monkeypatch):
    cfg = quality_cfg("rows=[paper]")
    original = quality.Scorer.score
    calls = []

    def crash_on_the_second(self, generator):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # a stop after iteration 4 was trained and saved
        return original(self, generator)

    monkeypatch.setattr(quality.Scorer, "score", crash_on_the_second)
    with pytest.raises(KeyboardInterrupt):
        quality.benchmark(cfg)
    monkeypatch.setattr(quality.Scorer, "score", original)
    monkeypatch.setattr(quality.RecipeRun, "train_until", lambda *a: pytest.fail("trained again"))
    points = quality.benchmark(cfg)
    assert [p["iteration"] for p in points] == [2, 4]
    assert points[1]["train_seconds"] >= points[0]["train_seconds"]  # the time before the stop is kept
    progress = json.loads((Path(cfg.out_dir) / "paper-seed0" / "progress.json").read_text())
    assert progress["iteration"] == 4 and progress["train_seconds"] > 0


def test_a_recipe_row_stopped_by_sigterm_mid_stage_goes_on_from_where_it_stopped(quality_cfg, monkeypatch):
    """Pre-emption after iteration 3 of 4 (mid-stage, no stage save to fall back on): the state is saved
    there, the process exits 143, and the same command ends with the weights and points of an uninterrupted
    run, training only the 4th iteration again."""
    straight = quality.benchmark(quality_cfg("rows=[paper]", out="straight"))
    stop = "'+callbacks.stop._target_=tests.helpers.callbacks.SigtermAt','+callbacks.stop.iteration=3'"
    cfg = quality_cfg("rows=[paper]", f"train_overrides=['model.ngf=8','model.ndf=8',{stop}]", out="stopped")
    with pytest.raises(SystemExit) as stopped:
        exit_on_user_error(lambda: quality.benchmark(cfg))  # as the benchmark's main runs it
    assert stopped.value.code == 128 + signal.SIGTERM
    folder = Path(cfg.out_dir) / "paper-seed0"
    assert read_weights_only(folder / "last.ckpt")["global_step"] == 3 * 2  # not the stage's 2 iterations
    progress = json.loads((folder / "progress.json").read_text())
    assert progress["iteration"] == 3 and progress["train_seconds"] > 0
    assert [p["iteration"] for p in load_points(cfg)] == [2]

    stages = []
    original = quality.RecipeRun.train_until
    monkeypatch.setattr(
        quality.RecipeRun, "train_until", lambda run, i: stages.append((run.iteration, i)) or original(run, i)
    )
    resumed = quality.benchmark(cfg)  # the stop is at iteration 3 only: it does not come again
    assert stages == [(3, 4)]
    assert [p["fid"] for p in resumed] == pytest.approx([p["fid"] for p in straight])
    assert resumed[1]["train_seconds"] > progress["train_seconds"]  # the time before the stop is kept
    a = read_weights_only(folder / "last.ckpt")["state_dict"]
    b = read_weights_only(Path(cfg.out_dir).parent / "straight" / "paper-seed0" / "last.ckpt")["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def load_points(cfg) -> list[dict]:
    return json.loads((Path(cfg.out_dir) / "quality.json").read_text())["points"]


def test_two_processes_sharing_a_folder_keep_each_others_points(quality_cfg):
    """One process per seed in the same out_dir: a process that started before the other's points were
    written does not drop them when it writes its own (quality.json is merged under a lock)."""
    seed0 = quality.benchmark(quality_cfg("rows=[paper]", "iterations=2"))
    cfg1 = quality_cfg("rows=[paper]", "iterations=2", "seeds=[1]")
    mine = [{**seed0[0], "seed": 1, "fid": 123.0}]  # as if written by a process that never saw seed 0's
    protocol = json.loads((Path(cfg1.out_dir) / "quality.json").read_text())["protocol"]
    results.write_results(
        cfg1.out_dir, mine, {**protocol, "recipes": {"classic": "classic"}, "command": "second"}
    )
    saved = json.loads((Path(cfg1.out_dir) / "quality.json").read_text())
    assert [(p["seed"], p["fid"]) for p in saved["points"]] == [(0, seed0[0]["fid"]), (1, 123.0)]
    assert saved["protocol"]["recipes"] == {"paper": [], "classic": "classic"}
    assert saved["protocol"]["commands"][-1] == "second" and len(saved["protocol"]["commands"]) == 2
    assert "| paper | 2 | 0,1 |" in (Path(cfg1.out_dir) / "quality.md").read_text()


def test_a_process_that_loaded_the_results_earlier_keeps_anothers_rescoring(quality_cfg, monkeypatch):
    """Seed 1's process loaded quality.json before seed 0's was scored again with final_fakes: writing its
    own points, it does not put back its stale copy of seed 0's."""
    cfg = quality_cfg("rows=[paper]")
    quality.benchmark(cfg)
    stale = load_points(cfg)
    quality.benchmark(quality_cfg("rows=[paper]", "final_fakes=24"))
    monkeypatch.setattr(quality, "load_results", lambda path: copy.deepcopy(stale))
    quality.benchmark(quality_cfg("rows=[paper]", "seeds=[1]"))
    saved = load_points(cfg)
    assert [(p["seed"], p["iteration"]) for p in saved] == [(0, 2), (0, 4), (1, 2), (1, 4)]
    assert [p["seed"] for p in saved if "fid_final" in p] == [0]


def test_the_conditional_row_trains_on_the_class_folders_and_scores_against_the_whole_set(
    quality_cfg, tmp_path
):
    """The `conditional` recipe: the paper's DCGAN conditioned on the class folders (here cat and dog), scored
    like the other rows against the full set's statistics, its classes drawn uniformly."""
    cfg = quality_cfg("rows=[paper,conditional]")
    points = quality.benchmark(cfg)
    assert sorted((p["row"], p["iteration"]) for p in points) == [
        ("conditional", 2),
        ("conditional", 4),
        ("paper", 2),
        ("paper", 4),
    ]
    assert all(p["fid"] > 0 for p in points)
    saved = json.loads((tmp_path / "out" / "quality.json").read_text())
    assert saved["protocol"]["recipes"]["conditional"] == ["model.conditional=true"]
    state = read_weights_only(next((tmp_path / "out").rglob("conditional*/**/last.ckpt")))
    assert state["hyper_parameters"]["class_names"] == ["cat", "dog"]
    assert "generator.class_embedding.weight" in state["state_dict"]
    assert len(list((tmp_path / "cache" / "fid_stats").glob("*.pt"))) == 1  # one reference: the whole set


def test_a_plot_of_many_rows_moves_its_legend_beside_the_lines(tmp_path):
    from PIL import Image

    protocol = {"data": "d", "image_size": 32, "batch_size": 4, "num_fake": 16, "num_real": 16}
    few = [
        {"row": f"r{i}", "seed": 0, "iteration": it, "fid": 100.0 - i - it} for i in range(3) for it in (1, 2)
    ]
    many = [{**p, "row": f"r{i}"} for i in range(12) for p in few[:2]]
    assert results.plot(few, tmp_path / "few.png", protocol) == tmp_path / "few.png"
    results.plot(many, tmp_path / "many.png", protocol)
    # 7 and 9.5 inches at 120 dpi: the legend of 12 rows gets its own column beside the axes
    assert Image.open(tmp_path / "few.png").width == 840 and Image.open(tmp_path / "many.png").width == 1140
    assert not list(tmp_path.glob("*.partial.png"))


def test_the_best_point_is_kept_and_scored_again_and_every_curve_is_summed_up(quality_cfg, monkeypatch):
    """best_fakes: the best point's generator (generator_best.pt) scored again after the run went past it; the
    table gives each run's best, last and loss from best to last, with the parameter counts."""
    scores = iter(
        [50.0, 40.0, 70.0, 60.0]
    )  # paper: 50 at 2, 40 at 4, 70 at 6; then the best again (40 -> 60)
    original = quality.Scorer.score

    def scripted(self, generator, num_fake=None):
        values = original(self, generator, num_fake)
        return {**values, "fid": next(scores)}

    monkeypatch.setattr(quality.Scorer, "score", scripted)
    points = quality.benchmark(quality_cfg("rows=[paper]", "iterations=6", "best_fakes=24"))
    by_iteration = {p["iteration"]: p for p in points}
    assert [by_iteration[i]["fid"] for i in (2, 4, 6)] == [50.0, 40.0, 70.0]
    best = by_iteration[4]
    assert best["best_fakes"] == 24 and best["fid_best"] == 60.0 and "fid_best" not in by_iteration[6]
    folder = Path(quality_cfg().out_dir)
    assert json.loads((folder / "paper-seed0" / "generator_best.json").read_text())["iteration"] == 4
    kept = load_generator(folder / "paper-seed0" / "generator_best.pt")  # a standalone generator file
    assert isinstance(kept, Generator) and not kept.training
    assert best["params_g"] > 0 and best["params_d"] > 0
    [curve] = results.curves(points)
    assert (curve["best_iteration"], curve["best_fid"], curve["last_fid"]) == (4, 40.0, 70.0)
    assert curve["last_vs_best"] == pytest.approx(0.75) and curve["fid_best"] == 60.0
    table = (folder / "quality.md").read_text()
    assert "| paper | 0 | 40.0 (4) | 70.0 (6) | +75% | 60.0 |" in table
    assert "the best point scored again with 24 fakes" in table
    with pytest.raises(UserError, match="best_fakes=1 must be a whole number"):
        quality.benchmark(quality_cfg("rows=[paper]", "best_fakes=1"))


def test_a_training_folder_assembled_from_parts_says_how_much_arrived(quality_cfg, folder, tmp_path):
    manifest = gpu_parts.split(folder, tmp_path / "parts", part_mb=0.02)
    (tmp_path / "parts" / manifest["parts"][-1]["name"]).unlink()  # one part never arrived
    report = gpu_parts.assemble(tmp_path / "parts", tmp_path / "assembled")
    assert not report.complete
    quality.benchmark(quality_cfg("rows=[paper]", f"data_path={tmp_path / 'assembled'}", "iterations=2"))
    written = json.loads((Path(quality_cfg().out_dir) / "quality.json").read_text())
    assert written["protocol"]["data_parts"] == report.line()
    assert (
        f"assembled from parts: {report.line()}" in (Path(quality_cfg().out_dir) / "quality.md").read_text()
    )


@pytest.mark.parametrize(
    ("preset", "expected"),
    [
        (
            "quality_published",
            {
                "iterations": 100000,
                "final_fakes": 50000,
                "best_fakes": 50000,
                "subset": None,
                "row_iterations": {"classic": 20000},
            },
        ),
        ("quality_small_data", {"iterations": 12000, "evaluate_every": 2000, "subset": 1000}),
    ],
)
def test_the_protocol_presets_compose_with_known_rows(preset, expected, folder, tmp_path):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name=f"benchmarks/{preset}", overrides=[f"data_path={folder}"])
    GlobalHydra.instance().clear()
    assert {key: cfg[key] for key in expected} == expected
    quality.check(cfg)  # every row a recipe, iterations a multiple of evaluate_every, counts valid
    assert "paper" in cfg.rows


def test_reference_only_caches_the_statistics_and_trains_nothing(quality_cfg, monkeypatch):
    for run in (quality.RecipeRun, quality.ClassicRun):
        monkeypatch.setattr(run, "train_until", lambda *a: pytest.fail("trained"))
    assert quality.benchmark(quality_cfg("rows=[classic,paper]", "reference_only=true")) == []
    cached = list((Path(quality_cfg().out_dir).parent / "cache" / "fid_stats").glob("*.pt"))
    assert len(cached) == 1  # the training set's statistics, under their key, for the runs to come


def test_a_state_newer_than_its_recorded_time_keeps_the_time_recorded(tmp_path, caplog):
    """A process killed between saving a stage's state and its progress.json: the earlier time is kept."""
    run = types.SimpleNamespace(folder=tmp_path, iteration=6000)
    assert quality.trained_seconds(run) == 0.0  # a new run
    (tmp_path / "progress.json").write_text(json.dumps({"iteration": 6000, "train_seconds": 90.0}))
    assert quality.trained_seconds(run) == 90.0
    (tmp_path / "progress.json").write_text(json.dumps({"iteration": 4000, "train_seconds": 60.0}))
    with caplog.at_level(logging.WARNING):
        assert quality.trained_seconds(run) == 60.0
    assert "recorded up to iteration 4000, its state is at 6000" in caplog.text
    (tmp_path / "progress.json").write_text(json.dumps({"iteration": 8000, "train_seconds": 120.0}))
    assert quality.trained_seconds(run) == 0.0


def test_a_slow_row_can_stop_earlier_with_its_final_and_best_points_there(quality_cfg):
    """row_iterations: the classic loop to 2 of the 4 iterations, scored again at its own last and best point."""
    cfg = quality_cfg(
        "rows=[classic,paper]", "row_iterations={classic: 2}", "final_fakes=20", "best_fakes=24"
    )
    points = quality.benchmark(cfg)
    assert sorted((p["row"], p["iteration"]) for p in points) == [("classic", 2), ("paper", 2), ("paper", 4)]
    classic_point = next(p for p in points if p["row"] == "classic")
    assert classic_point["final_fakes"] == 20 and classic_point["best_fakes"] == 24
    assert quality.benchmark(cfg) == points  # finished: a rerun trains and scores nothing


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("row_iterations={hinge: 2}", "row_iterations names hinge, which is not a row"),
        (
            "row_iterations={classic: 3}",
            "row_iterations.classic=3 must be a positive multiple of evaluate_every=2",
        ),
        ("row_iterations={classic: true}", "row_iterations.classic=True must be a positive multiple"),
    ],
)
def test_bad_row_lengths_are_one_line(quality_cfg, setting, message):
    with pytest.raises(UserError, match=message):
        quality.check(quality_cfg(setting))
