"""The class interpolation sheet callback: its classes checked at start-up in one line."""

import pytest

from dcgan_lit.callbacks import ClassInterpolationSheet
from dcgan_lit.errors import UserError
from tests.helpers.model import tiny_model


def test_the_sheet_s_classes_are_indices_of_the_model_s_classes(tmp_path):
    model = tiny_model(conditional=True, class_names=["cat", "horse", "bird"])
    assert ClassInterpolationSheet(str(tmp_path / "s.png"), ["horse", "bird", "cat"]).class_indices(
        model
    ) == [1, 2, 0]


@pytest.mark.parametrize(
    ("classes", "conditional", "message"),
    [
        (["horse", "bird"], False, "the model is unconditional; set model.conditional=true"),
        (["horse", "zebra"], True, r"unknown: \['zebra'\]"),
        (["horse"], True, "must be >= 2 of the run's classes"),
    ],
)
def test_classes_that_do_not_fit_the_run_are_one_line(tmp_path, classes, conditional, message):
    model = tiny_model(conditional=True, class_names=["horse", "bird"]) if conditional else tiny_model()
    with pytest.raises(UserError, match=message) as error:
        ClassInterpolationSheet(str(tmp_path / "s.png"), classes).on_train_start(None, model)
    assert "\n" not in str(error.value)
