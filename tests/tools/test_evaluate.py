"""The evaluator (python -m dcgan_lit.tools.evaluate): a checkpoint or a folder of fakes, its weights, its warnings."""

import logging

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import open_dict

from dcgan_lit.errors import UserError
from dcgan_lit.run.fit import train
from dcgan_lit.tools.evaluate import evaluate
from tests.helpers.config import CONF_DIR
from tests.helpers.images import write_images
from tests.helpers.metrics import FIDELITY_NAME, run_evaluate


@pytest.mark.slow
def test_evaluator_runs_the_inception_given_by_weights_path(
    stand_in_inception_weights, image_folder, tmp_path, evaluate_cfg
):
    fakes = tmp_path / "fakes"
    write_images(fakes, 2, size=(32, 32), seed=1)
    result = run_evaluate(
        fakes,
        image_folder,
        tmp_path,
        "metrics=default",
        f"metrics.fid.weights_path={stand_in_inception_weights}",
        "metrics.fid.num_real=2",
        "metrics.fid.batch_size=2",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    header, _, row = [line for line in result.stdout.splitlines() if line.startswith("| ")]
    cells = dict(zip(header.strip("| ").split(" | "), row.strip("| ").split(" | "), strict=True))
    assert cells["features"] == f"{FIDELITY_NAME} (tf1-bilinear-299-noantialias)"
    assert (cells["real"], cells["fake"], cells["reference"]) == ("2", "2", "computed")
    [stats] = (tmp_path / "cache" / "fid_stats").glob("*.pt")
    assert stats.name.startswith(f"fid-{FIDELITY_NAME}-2-")
    # the command's row is the API's result for the same settings; the reference scored against itself is 0
    settings = (
        "metrics=default",
        f"metrics.fid.weights_path={stand_in_inception_weights}",
        "metrics.fid.batch_size=2",
    )
    again = evaluate(evaluate_cfg(*settings, f"fake_dir={fakes}", "metrics.fid.num_real=2"))
    assert float(cells["fid"]) == pytest.approx(again["fid"], abs=1e-4)
    four = tmp_path / "four"
    write_images(four, 4, size=(32, 32), seed=5)
    same = evaluate(evaluate_cfg(*settings, f"fake_dir={four}", "metrics.fid.num_real=null", folder=four))
    assert abs(same["fid"]) < 1e-6


@pytest.mark.slow
def test_evaluator_reports_a_bad_weights_file_in_one_line(image_folder, tmp_path):
    bad = tmp_path / "weights.pth"
    torch.save({"conv.weight": torch.zeros(3, 3)}, bad)
    result = run_evaluate(
        image_folder, image_folder, tmp_path, "metrics=default", f"metrics.fid.weights_path={bad}"
    )
    assert result.returncode == 1 and "Traceback" not in result.stdout + result.stderr
    [line] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert line.startswith(f"error: FID: {bad} is not the FID Inception's state_dict (")


@pytest.fixture
def evaluate_cfg(image_folder, tmp_path):
    """Factory: the evaluate tool's config on ``folder`` (default: the generated image folder) + overrides."""

    def make(*overrides, folder=None):
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose(
                config_name="tools/evaluate",
                overrides=[
                    "dataset=imagefolder",
                    f"dataset.path={folder or image_folder}",
                    "metrics=tiny",
                    "device=cpu",
                    f"paths.cache_dir={tmp_path / 'cache'}",
                    *overrides,
                ],
            )
        with open_dict(cfg):
            cfg.paths.output_dir = str(tmp_path / "eval")
        return cfg

    yield make
    GlobalHydra.instance().clear()


def test_evaluator_prints_a_fid_row_for_a_checkpoint_and_for_a_folder(
    tiny_cfg, evaluate_cfg, tmp_path, capsys
):
    train(tiny_cfg("trainer.max_steps=2"))
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    capsys.readouterr()
    row = evaluate(
        evaluate_cfg(
            f"ckpt_path={ckpt}",
            "metrics.fid.num_fake=64",
            "metrics.kid.enabled=true",
            "metrics.kid.subset_size=16",
        )
    )
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("| source | dataset | real | fake | features | fid |") and str(ckpt) in out[2]
    assert row["real"] == 32 and row["fake"] == 64 and row["fid"] > 0 and "kid_mean" in row
    assert row["reference"].startswith("computed") and row["real_seconds"] >= 0 and row["fake_seconds"] > 0
    again = evaluate(evaluate_cfg(f"ckpt_path={ckpt}", "metrics.fid.num_fake=64"))
    assert again["reference"].startswith("cached") and again["fid"] == pytest.approx(row["fid"], rel=1e-9)

    fakes = tmp_path / "fakes"
    write_images(fakes, 10, size=(32, 32), seed=5)
    folder_row = evaluate(evaluate_cfg(f"fake_dir={fakes}", "model=dcgan32"))
    assert folder_row["fake"] == 10 and folder_row["reference"].startswith("cached") and folder_row["fid"] > 0


def test_unreadable_fake_files_are_skipped_with_one_warning(tmp_path, caplog):
    from dcgan_lit.tools.evaluate import fake_images

    fakes = tmp_path / "fakes"
    write_images(fakes, 3, size=(32, 32), seed=5)
    (fakes / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with caplog.at_level(logging.WARNING):
        images = fake_images(str(fakes), 32, 3)
    assert images.shape == (3, 3, 32, 32) and images.dtype == torch.uint8
    [record] = [r for r in caplog.records if "unreadable" in r.getMessage()]
    assert record.getMessage() == f"fake_dir={fakes}: skipped 1 unreadable files"


def test_a_conditional_checkpoint_is_scored_overall_and_per_class(
    tiny_conditional_run, evaluate_cfg, tmp_path, capsys
):
    images = tiny_conditional_run.parent / "images"  # horse/ and bird/ (see the tiny_conditional_run fixture)
    ckpt = tiny_conditional_run / "checkpoints" / "last.ckpt"

    def config(*overrides):
        return evaluate_cfg("metrics.fid.num_fake=16", f"ckpt_path={ckpt}", *overrides, folder=images)

    capsys.readouterr()
    row = evaluate(config("dataset.classes=[horse,bird]"))
    out = capsys.readouterr().out.splitlines()
    assert row["real"] == 16 and row["fake"] == 16  # overall: the whole set, classes drawn uniformly
    assert set(row["fid_per_class"]) == {"horse", "bird"} and all(
        v >= 0 for v in row["fid_per_class"].values()
    )
    assert out[3] == "| class | real | fake | fid |" and out[5].startswith("| horse | 8 | 16 | ")
    assert len(list((tmp_path / "cache" / "fid_stats").glob("*.pt"))) == 3  # the whole set and each class
    again = evaluate(config("dataset.classes=[horse,bird]"))
    assert again["fid_per_class"] == row["fid_per_class"]  # seeded fakes, cached references
    with pytest.raises(
        UserError, match=r"the checkpoint's classes \['horse', 'bird'\] are not the dataset's"
    ):
        evaluate(config())  # sorted folders: bird, horse
