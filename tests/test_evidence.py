"""The evidence table: every row composes to the options it names, and results become a resumable table."""

import json

import pytest

from dcgan_lit import evidence

from .conftest import compose_config


@pytest.mark.parametrize("dataset", list(evidence.DATASETS))
@pytest.mark.parametrize("row", list(evidence.ROWS))
def test_every_cell_is_a_train_command_that_composes(row, dataset, tmp_path):
    command = evidence.train_command(row, dataset, 1500, tmp_path / "run")
    assert command[1] == "train.py" and command[-1] == f"hydra.run.dir={tmp_path / 'run'}"
    cfg = compose_config(command[2:-1], tmp_path)
    assert cfg.trainer.max_steps == 1500 and cfg.dataset.batch_size == 64 and cfg.model.image_size == 32
    assert cfg.dataset.subset == (1000 if "subset" in dataset else None)
    assert cfg.seed == (43 if "seed 43" in row else 42)
    model = cfg.model
    options = {
        "EMA": model.ema.decay is not None,
        "DiffAugment": list(model.augment_policy) == ["color", "translation", "cutout"],
        "spectral": model.d_norm == "spectral",
        "hinge": model.loss == "hinge",
    }
    expected = set(options) if row == "all four" else {name for name in options if name in row}
    assert {name for name, on in options.items() if on} == expected


def test_results_become_a_table_and_finished_cells_are_skipped(tmp_path, capsys):
    results = tmp_path / "results.jsonl"
    cells = [("cat faces (15,747)", "paper defaults", 40.31), ("1,000-image subset", "+ hinge loss", 55.0)]
    results.write_text(
        "".join(json.dumps({"dataset": d, "row": r, "proxy_fid": f}) + "\n" for d, r, f in cells)
    )
    assert evidence.done(results) == {(d, r) for d, r, _ in cells}
    evidence.write_table(results, tmp_path / "results.md")
    lines = (tmp_path / "results.md").read_text().splitlines()
    assert lines[0] == "| run | cat faces (15,747) | 1,000-image subset |"
    assert "| paper defaults | 40.31 | — |" in lines and "| + hinge loss | — | 55.00 |" in lines
    assert len(lines) == 2 + len(evidence.ROWS)
