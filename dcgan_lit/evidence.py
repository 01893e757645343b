"""The small-data evidence: paper defaults vs each option vs their combination, at equal iterations, by proxy FID.

    python -m dcgan_lit.evidence --out outputs/evidence --iterations 800

Every row is one ``python train.py`` run (printed before it starts) on cat faces at 32x32 (dcgan32 at a quarter
of the paper's width, ngf = ndf = 16, so that twelve runs fit a shared CPU), on all of them and on a fixed
1,000-image subset, scored by ``python -m dcgan_lit.proxy_features score`` against the full set. Rows
already in ``results.jsonl`` are skipped, so an interrupted run picks up where it stopped; ``results.md`` is
the table.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROWS: dict[str, list[str]] = {
    "paper defaults": [],
    "paper defaults, seed 43": ["seed=43"],  # how far the score moves with the seed alone
    "+ EMA of G": ["model.ema.decay=0.995"],
    "+ DiffAugment": ["augment=diffaugment"],
    "+ spectral norm D": ["model.d_norm=spectral"],
    "+ hinge loss": ["gan.loss=hinge"],
    "all four": ["model.ema.decay=0.995", "augment=diffaugment", "model.d_norm=spectral", "gan.loss=hinge"],
}
DATASETS: dict[str, list[str]] = {
    "cat faces (15,747)": [],
    "1,000-image subset": ["dataset.subset=1000"],
}
COMMON = [
    "dataset=catfaces",
    "model=dcgan32",
    "model.ngf=16",
    "model.ndf=16",
    "dataset.batch_size=64",
    "logger=csv",
    "accelerator=cpu",
    "callbacks.rich_progress_bar=null",
    "callbacks.model_summary=null",
    "callbacks.generator_export.artifact=false",
    "trainer.max_epochs=-1",
]


def slug(name: str) -> str:
    """'+ EMA of G' -> 'ema_of_g': a folder name."""
    return "_".join("".join(c if c.isalnum() else " " for c in name.lower()).split())


def train_command(row: str, dataset: str, iterations: int, run_dir: Path) -> list[str]:
    """The ``python train.py`` command line of one table cell."""
    overrides = [*COMMON, f"trainer.max_steps={iterations}", *DATASETS[dataset], *ROWS[row]]
    return [sys.executable, "train.py", *overrides, f"hydra.run.dir={run_dir}"]


def score_command(checkpoint: Path, features: Path) -> list[str]:
    """The proxy-FID command for one checkpoint."""
    return [
        sys.executable,
        "-m",
        "dcgan_lit.proxy_features",
        "score",
        "--features",
        str(features),
        str(checkpoint),
    ]


def run(command: list[str], threads: int) -> str:
    """Runs ``command``, echoing it; returns its stdout, or exits with its stderr's last lines on failure."""
    print("$", shlex.join([Path(command[0]).name, *command[1:]]), flush=True)
    # One thread per run by default: on a busy shared CPU, more threads than free cores make each step slower.
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        sys.exit(f"failed ({result.returncode}):\n" + "\n".join(result.stderr.splitlines()[-20:]))
    return result.stdout


def done(results: Path) -> set[tuple[str, str]]:
    """The (dataset, row) cells already in the results file."""
    if not results.is_file():
        return set()
    records = [json.loads(line) for line in results.read_text().splitlines() if line.strip()]
    return {(r["dataset"], r["row"]) for r in records}


def write_table(results: Path, table: Path) -> None:
    """results.jsonl -> a Markdown table: one row per option, one column per dataset."""
    records = [json.loads(line) for line in results.read_text().splitlines() if line.strip()]
    fid = {(r["dataset"], r["row"]): r["proxy_fid"] for r in records}
    lines = ["| run | " + " | ".join(DATASETS) + " |", "|---|" + "---:|" * len(DATASETS)]
    for row in ROWS:
        cells = [f"{fid[d, row]:.2f}" if (d, row) in fid else "—" for d in DATASETS]
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    table.write_text("\n".join(lines) + "\n")
    print(table.read_text())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m dcgan_lit.evidence", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("outputs/evidence"))
    parser.add_argument("--iterations", type=int, default=800)
    parser.add_argument("--features", type=Path, default=Path("outputs/proxy_features.pt"))
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads per run (OMP_NUM_THREADS)")
    parser.add_argument("--rows", nargs="*", choices=list(ROWS), default=list(ROWS))
    parser.add_argument("--datasets", nargs="*", choices=list(DATASETS), default=list(DATASETS))
    args = parser.parse_args(argv)

    args.out.mkdir(parents=True, exist_ok=True)
    if not args.features.is_file():
        run(
            [sys.executable, "-m", "dcgan_lit.proxy_features", "train", "--out", str(args.features)],
            args.threads,
        )
    results = args.out / "results.jsonl"
    for dataset in args.datasets:
        for row in args.rows:
            if (dataset, row) in done(results):
                continue
            run_dir = args.out / slug(dataset) / slug(row)
            start = time.perf_counter()
            run(train_command(row, dataset, args.iterations, run_dir), args.threads)
            minutes = (time.perf_counter() - start) / 60
            checkpoint = run_dir / "checkpoints" / "last.ckpt"
            proxy_fid = float(run(score_command(checkpoint, args.features), args.threads).split()[0])
            record = {"dataset": dataset, "row": row, "iterations": args.iterations, "proxy_fid": proxy_fid}
            record["train_minutes"] = round(minutes, 1)
            with results.open("a") as file:
                file.write(json.dumps(record) + "\n")
            write_table(results, args.out / "results.md")


if __name__ == "__main__":
    main()
