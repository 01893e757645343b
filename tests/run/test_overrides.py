"""Bad overrides, fuzzed: random overrides of the real config's keys end in one clear refusal naming the key (or
a run that trains), never a traceback, and a refused run leaves no half-made state in its folder.

The examples run in-process, through Hydra's compose API into the entry ``train.py`` uses
(``run_task`` under ``exit_on_user_error``); a handful run through the real command line. Training is capped at
two iterations, whatever the override asks (a huge ``trainer.max_steps`` is legal)."""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from pathlib import Path

import lightning as L
import pytest
from hydra.errors import HydraException
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from dcgan_lit.checkpoint.io import load_weights
from dcgan_lit.errors import exit_on_user_error
from tests.helpers.config import TINY, compose_config
from tests.helpers.runs import run_cli
from train import run_task, task_overrides

EXAMPLES = int(os.environ.get("DCGAN_FUZZ_EXAMPLES", "100"))  # a longer fuzz: DCGAN_FUZZ_EXAMPLES=500
SECTIONS = ("dataset", "model", "trainer", "callbacks", "logger", "gan", "augment", "metrics")
VALUES = [
    "abc",
    "-1",
    "0",
    "1",
    "1e9",
    "-1e9",
    "0.5",
    "[1,2",
    "[]",
    "[a,b]",
    "{a:1}",
    "null",
    "true",
    "false",
    "''",
]
GROUPS = (
    "model",
    "dataset",
    "trainer",
    "logger",
    "callbacks",
    "augment",
    "metrics",
    "accelerator",
    "experiment",
)


def config_keys(base: list[str]) -> list[str]:
    cfg = compose_config(base, Path(tempfile.mkdtemp()))
    keys = []

    def walk(prefix: str, node) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(f"{prefix}.{key}" if prefix else str(key), value)
        else:
            keys.append(prefix)

    for section in SECTIONS:
        walk(section, OmegaConf.to_container(cfg[section], resolve=False))
    return [*keys, "seed", "ckpt_path"]


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    from tests.helpers.images import write_images

    folder = tmp_path_factory.mktemp("fuzz-images")
    write_images(folder, 16, size=(32, 32), seed=0)
    return ["dataset=imagefolder", f"dataset.path={folder}", *TINY, "trainer.max_steps=2"]


@pytest.fixture(scope="module")
def keys(base):
    return config_keys(base)


def integer_keys(base: list[str]) -> list[str]:
    """The settings whose value in the composed config is a whole number (``trainer.devices`` aside: it also
    takes a list of devices or ``auto``, and Lightning checks it)."""
    cfg = compose_config(base, Path(tempfile.mkdtemp()))
    found = ["seed"]

    def walk(prefix: str, node) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(f"{prefix}.{key}", value)
        elif isinstance(node, int) and not isinstance(node, bool):
            found.append(prefix)

    for section in SECTIONS:
        walk(section, OmegaConf.to_container(cfg[section], resolve=True))
    return [key for key in found if key != "trainer.devices"]


@pytest.fixture(scope="module")
def int_keys(base):
    return integer_keys(base)


@pytest.fixture
def two_iterations(monkeypatch):
    fit = L.Trainer.fit

    def capped(self, *args, **kwargs):
        if self.world_size > 1:  # Lightning would re-run this command line (pytest) once per extra process
            return None  # a multi-process launch is tests/run/test_distributed.py's, through train.py
        self.fit_loop.epoch_loop.max_steps = 4  # 2 iterations of D and G
        self.fit_loop.max_epochs = 1
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(L.Trainer, "fit", capped)


def attempt(overrides: list[str], out: Path) -> tuple[str, str]:
    """("refused", message) or ("trained", "") for ``python train.py <overrides>``, in-process."""
    try:
        cfg = compose_config(overrides, out)
    except (HydraException, OmegaConfBaseException) as error:  # Hydra's own refusal of the command line
        return "refused-by-hydra", str(error)
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        try:
            exit_on_user_error(lambda: run_task(cfg), task_overrides())
        except SystemExit as exit_:
            assert exit_.code == 1
            return "refused", stderr.getvalue().strip()
    return "trained", ""


def names(message: str, key: str) -> bool:
    """The message names the key, its last part, or (for a value the built class refused) its section."""
    section, last = key.split(".")[0], key.split(".")[-1]
    return (
        key in message
        or last in message
        or last.replace("_", ".") in message
        or f"error: {section}" in message
    )


def override_for(kind: str, key: str, value: str, group: str) -> tuple[str, str]:
    if kind == "unknown key":
        return f"{key}_typo={value}", f"{key}_typo"
    if kind == "unknown option":
        return f"{group}=no_such_{group}", group
    return f"{key}={value}", key


@pytest.mark.slow
def test_random_bad_overrides_are_one_line_naming_the_key(
    base, keys, int_keys, two_iterations, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # relative paths drawn as values land here, not in the checkout
    outcomes: dict[str, int] = {}

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(
        kind=st.sampled_from(["value", "value", "value", "unknown key", "unknown option"]),
        key=st.sampled_from(keys),
        value=st.one_of(st.sampled_from(VALUES), st.integers(-(10**12), 10**12).map(str)),
        group=st.sampled_from(GROUPS),
    )
    def example(kind, key, value, group):
        override, named = override_for(kind, key, value, group)
        out = Path(tempfile.mkdtemp()) / "run"
        outcome, message = attempt([*base, override], out)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        assert "Traceback" not in message, (override, message)
        if outcome == "refused":
            assert message.startswith("error: ") and "\n" not in message, (override, message)
            assert names(message, named), (override, message)
            # refused at start: no checkpoint; refused after training (e.g. at the export): only whole ones
            for left in out.rglob("*.ckpt") if out.exists() else []:
                assert load_weights(left)["global_step"] > 0, (override, message, left)
        elif outcome == "refused-by-hydra":  # Hydra's message; its command line prints the override too
            quoted = f"'{value}" in message  # the parser quotes the input it could not read
            assert names(message, named) or "no_such" in message or quoted, (override, message)
        if kind == "value" and key in int_keys and value in ("true", "false"):  # True is not the integer 1
            assert outcome == "refused" and f"{key}={value} must be an integer" in message, (
                override,
                message,
            )

    example()
    print(f"override fuzz: {sum(outcomes.values())} examples, {outcomes}")
    assert sum(outcomes.values()) >= min(EXAMPLES, 500) * 0.9


def test_the_whole_number_settings_are_found(base, int_keys):
    assert {"model.d_steps", "trainer.max_steps", "dataset.batch_size", "seed"} <= set(int_keys)
    assert len(int_keys) >= 25


@pytest.mark.parametrize("value", ["true", "false"])
def test_no_whole_number_setting_takes_a_boolean(base, int_keys, two_iterations, tmp_path, value):
    for key in int_keys:
        outcome, message = attempt([*base, f"{key}={value}"], tmp_path / key / "run")
        assert outcome == "refused", (key, value, outcome)  # before any data are read or a step is trained
        assert message.startswith(f"error: {key}={value} must be an integer"), message
        assert not (tmp_path / key / "run").exists() or not list((tmp_path / key / "run").rglob("*.ckpt"))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("dataset.batch_size=abc", "dataset.batch_size"),
        ("model.ngf=-1", "model.ngf"),
        ("model=dcgan48", "model"),
        ("trainer.max_steps=[1,2", "trainer.max_steps"),
    ],
)
def test_bad_overrides_through_the_command_line(base, override, named, tmp_path):
    result = run_cli(*base, override, f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    value = override.split("=", 1)[1]  # Hydra's parser names the unparsable value, not the key
    assert named in result.stderr or named.split(".")[-1] in result.stderr or value in result.stderr, (
        result.stderr
    )
    assert not list((tmp_path / "run").rglob("*.ckpt"))
