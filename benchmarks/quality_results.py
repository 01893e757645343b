"""The quality benchmark's results: quality.json (every point, merged under a lock), quality.md (the table, its
protocol in the header) and fid.png (FID against iterations). Pure bookkeeping: nothing here trains or scores."""

from __future__ import annotations

import fcntl
import json
import logging
import statistics
from pathlib import Path

from dcgan_lit.errors import UserError

log = logging.getLogger(__name__)


# what must match for a rerun to add to earlier results rather than mix two protocols in one table
SAME_PROTOCOL = ("image_size", "batch_size", "train_images", "num_fake", "num_real", "features")


def check_resumable(path: Path, protocol: dict) -> None:
    """Refuses (one line) to resume results of another protocol in the same ``out_dir``."""
    if not path.is_file():
        return
    earlier = json.loads(path.read_text())["protocol"]
    differ = [k for k in SAME_PROTOCOL if earlier.get(k) != protocol[k]]
    if differ:
        details = ", ".join(f"{k} {earlier.get(k)} -> {protocol[k]}" for k in differ)
        raise UserError(
            f"quality: {path} holds results of another protocol ({details}); pass name=<new folder> "
            "or the same settings"
        )
    for row, recipe in protocol["recipes"].items():
        if row in earlier["recipes"] and earlier["recipes"][row] != recipe:
            raise UserError(
                f"quality: row {row} was {earlier['recipes'][row]} in {path}, now {recipe}; "
                "give the new recipe another row name or pass name=<new folder>"
            )


def load_results(path: Path) -> list[dict]:
    return json.loads(path.read_text())["points"] if path.is_file() else []


def write_results(out_dir: str | Path, points: list[dict], protocol: dict) -> None:
    """quality.json (every point), quality.md (the table), fid.png (the curves); each written atomically.

    ``points`` are the ones this process scored or rescored: under a lock, they replace their keys' points in
    quality.json and every other point and recipe there is kept, so several processes of one protocol (e.g.
    ``seeds=[0]`` and ``seeds=[1]``, one per core or GPU) share a folder.
    """
    out = Path(out_dir)
    with open(out / "quality.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        path = out / "quality.json"
        earlier = json.loads(path.read_text()) if path.is_file() else {"protocol": protocol, "points": []}
        mine = {point_key(p) for p in points}
        merged = [p for p in earlier["points"] if point_key(p) not in mine] + points
        merged.sort(key=lambda p: (p["seed"], p["iteration"], p["row"]))
        protocol = {**protocol, "recipes": {**earlier["protocol"]["recipes"], **protocol["recipes"]}}
        commands = [c for c in earlier["protocol"].get("commands", []) if c != protocol["command"]]
        protocol["commands"] = [*commands, protocol["command"]]
        write_text(path, json.dumps({"protocol": protocol, "points": merged}, indent=2))
        write_text(out / "quality.md", markdown_table(merged, protocol))
        plot(merged, out / "fid.png", protocol)


def point_key(point: dict) -> tuple[str, int, int]:
    return point["row"], point["seed"], point["iteration"]


def write_text(path: Path, text: str) -> None:
    partial = path.with_suffix(path.suffix + ".partial")
    partial.write_text(text)
    partial.replace(path)


# per-point measures that are probabilities, beside the FIDs
PROBABILITIES = ("d_gap", "d_gap_seen", "augment_p")


def summary(points: list[dict], batch_size: int) -> list[dict]:
    """Per row and evaluated iteration: mean FID over seeds, its spread (min-max), wall time, the batch (a
    recipe may set its own; points that do not say trained at the benchmark's ``batch_size``)."""
    rows: dict[tuple[str, int], list[dict]] = {}
    for p in points:
        rows.setdefault((p["row"], p["iteration"]), []).append(p)
    result = []
    for (row, iteration), group in rows.items():
        entry = {"row": row, "iteration": iteration, "seeds": sorted(p["seed"] for p in group)}
        entry["batch_size"] = group[0].get("batch_size", batch_size)
        for key in dict.fromkeys(
            k for p in group for k in p if k.startswith(("fid", "is_mean", *PROBABILITIES))
        ):
            values = [p[key] for p in group if key in p]
            entry[key] = statistics.fmean(values)
            entry[f"{key}_min"], entry[f"{key}_max"] = min(values), max(values)
            entry[f"{key}_seeds"] = len(values)  # fid_final: maybe not every seed's run has it yet
        entry["train_minutes"] = statistics.fmean(p["train_seconds"] for p in group) / 60
        result.append(entry)
    return result


def markdown_table(points: list[dict], protocol: dict) -> str:
    header = (
        f"{protocol['data']} ({protocol['train_images']} images) at {protocol['image_size']}x{protocol['image_size']}, "
        f"batch {protocol['batch_size']}; FID of {protocol['num_fake']} fakes against {protocol['num_real']} "
        f"real training images, {protocol['features']}; device {protocol['device']}. "
        "Mean over seeds, (min-max) in brackets; train minutes exclude scoring."
    )
    if "data_parts" in protocol:  # a folder assembled from transfer parts: how much of the set arrived
        header += f" The training folder was assembled from parts: {protocol['data_parts']}."
    entries = summary(points, protocol["batch_size"])
    extra = [
        k
        for k in ("is_mean", "fid_subset", "fid_final", "fid_subset_final", *PROBABILITIES)
        if any(k in e for e in entries)
    ]
    finals = sorted({p["final_fakes"] for p in points if "final_fakes" in p})
    if finals:  # the last iteration scored again with more fakes: less of FID's small-sample bias
        counts = " or ".join(str(n) for n in finals)
        header += (
            f" fid_final: the last iteration scored again with {counts} fakes against the same real images."
        )
    batches = any(e["batch_size"] != protocol["batch_size"] for e in entries)
    if batches:  # a recipe with its own batch sees more images per iteration: said in the table
        header += f" A batch column: the rows that do not train at batch {protocol['batch_size']}."
    columns = ["row", *(["batch"] if batches else []), "iterations", "seeds", "FID", *extra, "train min"]
    lines = [header, "", "| " + " | ".join(columns) + " |", "|" + "|".join(" --- " for _ in columns) + "|"]
    for e in sorted(entries, key=lambda e: (e["iteration"], e["row"])):
        cells = [e["row"], *([str(e["batch_size"])] if batches else []), str(e["iteration"])]
        cells += [",".join(map(str, e["seeds"])), spread(e, "fid")]
        cells += [spread(e, k) if k in e else "" for k in extra]
        cells.append(f"{e['train_minutes']:.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    bests = sorted({p["best_fakes"] for p in points if "best_fakes" in p})
    lines += ["", "Whole curves: each run's best and last point, and what it lost from best to last"]
    if bests:
        lines[-1] += f" (fid_best: the best point scored again with {' or '.join(map(str, bests))} fakes)"
    lines += ["", curves_table(points)]
    return "\n".join(lines)


def curves(points: list[dict]) -> list[dict]:
    """Each (row, seed)'s whole curve in three numbers: its best point, its last point, and how much of the best
    it lost by the end (``last_vs_best``: last FID / best FID - 1), with the best and last scored again with
    more fakes where they were (``fid_best``, ``fid_final``)."""
    runs: dict[tuple[str, int], list[dict]] = {}
    for p in points:
        runs.setdefault((p["row"], p["seed"]), []).append(p)
    result = []
    for (row, seed), run in sorted(runs.items()):
        best = min(run, key=lambda p: p["fid"])
        last = max(run, key=lambda p: p["iteration"])
        entry = {
            "row": row,
            "seed": seed,
            "best_iteration": best["iteration"],
            "best_fid": best["fid"],
            "last_iteration": last["iteration"],
            "last_fid": last["fid"],
            "last_vs_best": last["fid"] / best["fid"] - 1,
        }
        for key, point in (("fid_best", best), ("fid_final", last), ("params_g", last), ("params_d", last)):
            if key in point:
                entry[key] = point[key]
        result.append(entry)
    return result


def curves_table(points: list[dict]) -> str:
    """The whole curves (:func:`curves`) as Markdown: rank recipes by all three numbers, not one early point."""
    entries = curves(points)
    extra = [k for k in ("fid_best", "fid_final") if any(k in e for e in entries)]
    params = any("params_g" in e for e in entries)
    columns = ["row", "seed", "best FID (iteration)", "last FID (iteration)", "last vs best", *extra]
    columns += ["G / D parameters"] if params else []
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join(" --- " for _ in columns) + "|"]
    for e in entries:
        cells = [e["row"], str(e["seed"]), f"{e['best_fid']:.1f} ({e['best_iteration']})"]
        cells += [f"{e['last_fid']:.1f} ({e['last_iteration']})", f"{e['last_vs_best']:+.0%}"]
        cells += [f"{e[k]:.1f}" if k in e else "" for k in extra]
        if params:
            cells.append(
                f"{e['params_g'] / 1e6:.2f}M / {e['params_d'] / 1e6:.2f}M" if "params_g" in e else ""
            )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def spread(entry: dict, key: str) -> str:
    digits = 2 if key in PROBABILITIES else 1  # probabilities in hundredths; FIDs in tenths
    if entry.get(f"{key}_seeds", len(entry["seeds"])) == 1:
        return f"{entry[key]:.{digits}f}"
    return f"{entry[key]:.{digits}f} ({entry[key + '_min']:.{digits}f}-{entry[key + '_max']:.{digits}f})"


def plot(points: list[dict], path: Path, protocol: dict) -> Path | None:
    """FID against iterations, one line per row and seed (skipped, with a warning, without matplotlib)."""
    if not points:
        return None
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.warning("quality: matplotlib is not installed, so no fid.png (pip install matplotlib)")
        return None
    figure, axes = plt.subplots(figsize=(7, 4.5))
    runs: dict[tuple[str, int], list[dict]] = {}
    for p in points:
        runs.setdefault((p["row"], p["seed"]), []).append(p)
    rows = list(dict.fromkeys(r for r, _ in runs))
    palette = plt.get_cmap("tab10" if len(rows) <= 10 else "tab20")  # a colour of its own for every row
    colours = {row: palette(i % palette.N) for i, row in enumerate(rows)}
    for (row, seed), run in sorted(runs.items()):
        run.sort(key=lambda p: p["iteration"])
        axes.plot(
            [p["iteration"] for p in run],
            [p["fid"] for p in run],
            marker="o",
            color=colours[row],
            linestyle="-" if seed == min(s for r, s in runs if r == row) else "--",
            label=f"{row} (seed {seed})",
        )
    axes.set_xlabel("iterations")
    axes.set_ylabel(f"FID ({protocol['num_fake']} fakes vs {protocol['num_real']} real)")
    axes.set_title(
        f"{protocol['data']}: {protocol['image_size']}px, batch {protocol['batch_size']}", fontsize=9
    )
    axes.grid(alpha=0.3)
    if len(runs) > 8:  # beside the plot, not over its lines
        figure.set_size_inches(9.5, 4.5)
        axes.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    else:
        axes.legend(fontsize=8)
    figure.tight_layout()
    partial = path.with_name(path.stem + ".partial.png")
    figure.savefig(partial, dpi=120)
    plt.close(figure)
    partial.replace(path)
    return path
