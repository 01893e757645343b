"""Start-up validation: each mistake is one line naming the key, the value and what is allowed, before data."""

import pytest

from dcgan_lit.errors import UserError
from dcgan_lit.run.fit import train
from tests.helpers.runs import run_cli


@pytest.fixture
def refuse(tiny_cfg, monkeypatch):
    """Runs train() on a tiny config with overrides and returns its one-line UserError; fails if data are read."""

    def never(*args, **kwargs):
        raise AssertionError("data were read before the config was validated")

    monkeypatch.setattr("dcgan_lit.data.folder.decode_images", never)
    monkeypatch.setattr("dcgan_lit.data.datamodule.cached_dataset", never)

    def run(*overrides: str, output_dir=None) -> str:
        with pytest.raises(UserError) as error:
            train(tiny_cfg(*overrides, output_dir=output_dir))
        message = str(error.value)
        assert "\n" not in message
        return message

    return run


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            ["model=dcgan64", "model.image_size=100"],
            "model.image_size=100 is not supported; allowed: [32, 64, 128, 256]",
        ),
        (["model.optimizer_g.lr=0"], "model.optimizer_g.lr=0 must be positive"),
        (["model.optimizer_d.lr=-0.1"], "model.optimizer_d.lr=-0.1 must be positive"),
        (["dataset.batch_size=-4"], "dataset.batch_size=-4 must be an integer >= 1"),
        (["dataset.batch_size=2.5"], "dataset.batch_size=2.5 must be an integer >= 1"),
        (["dataset.batch_size=true"], "dataset.batch_size=true must be an integer >= 1"),
        (["model.d_steps=true"], "model.d_steps=true must be an integer from 1 to 100; the paper uses 1"),
        (
            ["trainer.max_steps=true"],
            "trainer.max_steps=true must be an integer >= 1 (or -1, null); -1: no limit",
        ),
        (["trainer.max_epochs=false"], "trainer.max_epochs=false must be an integer >= 1 (or -1, null)"),
        (["seed=true"], "seed=true must be an integer from 0 to 4294967295 (or null)"),
        (
            ["model.optimizer_d.betas=[-0.1,0.9]"],
            "model.optimizer_d.betas=[-0.1, 0.9] must be two numbers in [0, 1)",
        ),
        (["model.optimizer_g.betas=[0.5]"], "model.optimizer_g.betas=[0.5] must be two numbers in [0, 1)"),
        (["dataset.channels=2"], "dataset.channels=2 is not allowed; use 1 (grayscale) or 3 (RGB)"),
        (["model.channels=1"], "model.channels=1 does not match dataset.channels=3"),
        (["dataset.image_size=64"], "dataset.image_size=64 does not match model.image_size=32"),
        (["model.ngf=0"], "model.ngf=0 must be an integer from 1 to 1024"),
        (["trainer.max_steps=0"], "trainer.max_steps=0 must be an integer >= 1 (or -1, null)"),
        (
            ["callbacks.model_checkpoint.every_n_steps=-1"],
            "callbacks.model_checkpoint.every_n_steps=-1 must be an integer >= 0; 0: off",
        ),
        (
            ["callbacks.divergence.action=panic"],
            "callbacks.divergence.action=panic is not allowed; use warn or stop",
        ),
    ],
)
def test_each_bad_value_is_one_line_naming_key_value_and_what_is_allowed(refuse, overrides, expected):
    assert expected in refuse(*overrides)


def test_a_missing_data_path_names_the_key(refuse, tmp_path):
    message = refuse(f"dataset.path={tmp_path / 'nowhere'}")
    assert f"dataset.path={tmp_path / 'nowhere'} is not a folder" in message
    assert "dataset.path must be set" in refuse("dataset.path=???")


def test_an_unwritable_output_dir_names_the_key(refuse, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("a file where the run folder should go")  # unwritable even for root, unlike chmod
    message = refuse(output_dir=blocker / "run")
    assert f"paths.output_dir={blocker / 'run'} is not a writable folder" in message
    message = refuse(f"callbacks.model_checkpoint.dirpath={blocker}/ckpts")
    assert f"callbacks.model_checkpoint.dirpath={blocker}/ckpts is not a writable folder" in message


@pytest.mark.slow
def test_the_cli_shows_a_traceback_only_with_hydra_full_error(tmp_path):
    """Without HYDRA_FULL_ERROR the CLI prints one line (tests/run/test_fit.py checks that); with it, the trace."""
    result = run_cli(
        "model.optimizer_g.lr=0",
        f"hydra.run.dir={tmp_path / 'run'}",
        cwd=tmp_path,
        env_extra={"HYDRA_FULL_ERROR": "1"},
    )
    assert result.returncode == 1 and "Traceback" in result.stderr
    assert "UserError: model.optimizer_g.lr=0 must be positive (the paper uses 2e-4)" in result.stderr
    assert not any(line.startswith("error:") for line in result.stderr.splitlines())
