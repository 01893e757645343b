"""Every tool is a module with a config, and python -m dcgan_lit.tools lists them all."""

import pytest

from tests.helpers.config import CONF_DIR, ROOT, compose_tool

pytestmark = pytest.mark.usefixtures("single_thread")


TOOLS = [
    "generate",
    "interpolate",
    "walk",
    "arithmetic",
    "search",
    "project",
    "neighbors",
    "evolution",
    "real_vs_fake",
    "probe",
]


@pytest.mark.parametrize("tool", TOOLS)
def test_every_tool_is_a_module_with_a_config(tool, tmp_path):
    import importlib

    cfg = compose_tool(tool, ["ckpt_path=x.ckpt" if tool != "evolution" else "run_dir=x"], tmp_path)
    assert cfg.task_name == tool
    module = importlib.import_module(f"dcgan_lit.tools.{tool}")
    assert callable(module.main) and callable(module.run)


def test_every_tool_config_is_a_runnable_listed_module():
    import importlib

    from dcgan_lit.tools import TOOLS as LISTED

    configs = {p.stem for p in (CONF_DIR / "tools").glob("*.yaml") if not p.stem.startswith("_")}
    assert set(TOOLS) <= configs and configs == set(LISTED)  # python -m dcgan_lit.tools lists every tool
    for name in configs:
        assert callable(importlib.import_module(f"dcgan_lit.tools.{name}").main), name


def test_python_m_dcgan_lit_tools_lists_every_tool_module_with_a_config(capsys):
    import runpy

    configs = {p.stem for p in (CONF_DIR / "tools").glob("*.yaml") if not p.stem.startswith("_")}
    modules = {p.stem for p in (ROOT / "dcgan_lit" / "tools").glob("*.py")} & configs
    assert modules == configs  # each config has its module
    runpy.run_module("dcgan_lit.tools", run_name="__main__")
    out = capsys.readouterr().out
    assert out.startswith("dcgan-lit tools: python -m dcgan_lit.tools.<name>")
    listed = {line.split()[0] for line in out.splitlines()[2:] if line.strip()}
    assert listed == modules
