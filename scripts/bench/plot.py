"""The feed benchmark's p99 against offered load, before and after: docs/feed-p99.png.

    python -m scripts.bench.plot                                # redraw from docs/bench-data/
    python -m scripts.bench.plot --after bench-results/feed.json  # adopt a new run, redraw
    python -m scripts.bench.plot --table                        # the after run as Markdown

"Before" is docs/bench-data/feed-before.json: the runs docs/benchmarks.md reported before
issue 12 (typed in from its tables, with their conditions). "After" is a JSON written by
`python -m scripts.bench.feed`; `--after` copies it to docs/bench-data/feed-after.json (the
raw results stay in bench-results/, which is not committed), and the picture is drawn from
the committed files only, so anyone can redraw it.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parents[2] / "docs"
DATA = DOCS / "bench-data"
BEFORE = DATA / "feed-before.json"
AFTER = DATA / "feed-after.json"
PICTURE = DOCS / "feed-p99.png"
# Issue 12's target level: 300 home reads/s with 60 posts/s (and 30 follows/s).
GOAL = {"home": 300.0, "post": 60.0}
TARGET_MS = {"home": 50.0, "post": 100.0}
TITLES = {"home": "home feed reads", "post": "post writes"}

Series = list[tuple[float, float]]


def before_series(data: dict[str, Any]) -> list[tuple[str, dict[str, Series]]]:
    return [
        (
            f"before: {run['label']}",
            {
                kind: [(point["rate"], point["p99_ms"]) for point in run[kind]]
                for kind in ("home", "post")
            },
        )
        for run in data["runs"]
    ]


def after_series(data: dict[str, Any]) -> list[tuple[str, dict[str, Series]]]:
    meta = data["meta"]
    series = []
    for run in range(1, meta["runs"] + 1):
        levels = [level for level in data["levels"] if level["run"] == run]
        series.append(
            (
                f"after: run {run} of {meta['runs']}, {meta['started_at'][:16].replace('T', ' ')} UTC",
                {
                    "home": [(lv["reads_per_second"], lv["home"]["p99_ms"]) for lv in levels],
                    "post": [(lv["posts_per_second"], lv["post"]["p99_ms"]) for lv in levels],
                },
            )
        )
    return series


def errored(data: dict[str, Any], run: int, kind: str) -> Series:
    rate = "reads_per_second" if kind == "home" else "posts_per_second"
    return [
        (level[rate], level[kind]["p99_ms"])
        for level in data["levels"]
        if level["run"] == run and sum(level[part]["errors"] for part in ("home", "post", "follow"))
    ]


def draw(before: dict[str, Any], after: dict[str, Any] | None, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, NullFormatter

    plain = FuncFormatter(lambda value, _: f"{value:g}")
    figure, panels = plt.subplots(1, 2, figsize=(12, 5.2))
    greys = ["#555555", "#888888", "#aaaaaa", "#cccccc"]
    colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"]
    for axes, kind in zip(panels, ("home", "post"), strict=True):
        rates: set[float] = {GOAL[kind]}
        for index, (label, series) in enumerate(before_series(before)):
            xs, ys = zip(*series[kind], strict=True)
            rates.update(xs)
            axes.plot(xs, ys, "s--", color=greys[index % len(greys)], label=label, ms=4)
        if after is not None:
            for index, (label, series) in enumerate(after_series(after)):
                if not series[kind]:
                    continue
                xs, ys = zip(*series[kind], strict=True)
                rates.update(xs)
                colour = colours[index % len(colours)]
                axes.plot(xs, ys, "o-", color=colour, label=label, ms=5)
                # Levels with errors (requests cut off unanswered): p99 is a lower bound.
                failed = [point for point in errored(after, index + 1, kind)]
                if failed:
                    fx, fy = zip(*failed, strict=True)
                    axes.plot(fx, fy, "o", ms=9, mfc="white", mec=colour, zorder=3)
        axes.axhline(TARGET_MS[kind], color="black", linestyle=":", linewidth=1)
        axes.annotate(
            f"p99 target {TARGET_MS[kind]:g} ms",
            (0.01, TARGET_MS[kind]),
            xycoords=("axes fraction", "data"),
            textcoords="offset points",
            xytext=(0, 3),
            fontsize=8,
        )
        axes.axvline(GOAL[kind], color="green", linestyle=":", linewidth=1)
        axes.annotate(
            f"goal {GOAL[kind]:g}/s",
            (GOAL[kind], 0.97),
            xycoords=("data", "axes fraction"),
            textcoords="offset points",
            xytext=(-4, 0),
            rotation=90,
            ha="right",
            va="top",
            fontsize=8,
            color="green",
        )
        axes.set_xscale("log")
        axes.set_yscale("log")
        axes.set_xticks(sorted(rates))
        for axis in (axes.xaxis, axes.yaxis):
            axis.set_major_formatter(plain)
            axis.set_minor_formatter(NullFormatter())
        axes.tick_params(axis="x", labelsize=7)
        axes.set_xlabel(f"offered {TITLES[kind]} per second (log)")
        axes.set_ylabel("p99 latency, ms (log)")
        axes.set_title(f"{TITLES[kind]}: p99 against offered load", fontsize=10)
        axes.grid(True, which="both", alpha=0.3)
    handles, labels = panels[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=2, fontsize=8, frameon=False)
    conditions = (
        f"before: {before['conditions']['data']}, {before['conditions']['readers']} readers"
    )
    if after is not None:
        meta = after["meta"]
        data = meta["data"]
        loads = [level["load_average_before"][0] for level in after["levels"]]
        conditions += (
            f"\nafter: {data['users']:,} users, {data['posts']:,} posts, "
            f"{data['feed_items']:,} feed items, drained before every level, commit "
            f"{meta['commit'].split()[0]}, load average {min(loads):.1f}-{max(loads):.1f}"
            " on 2 cores\nhollow marker: a level with errors (requests cut off), its p99 a lower bound"
        )
    figure.suptitle(
        "ZAP feed benchmark, mix reads:posts:follows = 10:2:1, open loop\n" + conditions,
        fontsize=9,
    )
    rows = (len(before["runs"]) + (after["meta"]["runs"] if after else 0) + 1) // 2
    figure.tight_layout(rect=(0, 0.04 + 0.035 * rows, 1, 0.90))
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)


def adopt(source: Path) -> None:
    """Copy a feed benchmark result into the committed data, refusing one without levels."""
    data = json.loads(source.read_text())
    if not data.get("levels"):
        raise SystemExit(f"{source} has no levels: not a result of scripts.bench.feed")
    AFTER.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, AFTER)
    print(f"copied {source} ({data['meta']['started_at']}, {data['meta']['commit']}) to {AFTER}")


def markdown(after: dict[str, Any]) -> str:
    """The adopted run as docs/benchmarks.md shows it: one row per level and run."""
    rows = [
        "| run | level (reads/posts/follows per s) | drained before it in s (what) | home p50 / p99 ms "
        "| post p50 / p99 ms | follow p99 ms | errors | generator lag p99 ms | load avg "
        "| held |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for level in after["levels"]:
        home, post, follow = level["home"], level["post"], level["follow"]
        errors = home["errors"] + post["errors"] + follow["errors"]
        drain = level["drain_before"]
        what = ", ".join(f"{name} {n}" for name, n in drain["waited_for"].items())
        waited = f"{drain['seconds']:g}" + (f" ({what})" if what else "")
        if not drain["drained"]:
            waited += " NOT drained: " + ", ".join(
                f"{k} {v}" for k, v in drain["remaining"].items()
            )
        rows.append(
            f"| {level['run']} | {level['reads_per_second']:g} / {level['posts_per_second']:g}"
            f" / {level['follows_per_second']:g} | {waited} "
            f"| {home['p50_ms']:.1f} / {home['p99_ms']:.1f} "
            f"| {post['p50_ms']:.1f} / {post['p99_ms']:.1f} | {follow['p99_ms']:.1f} "
            f"| {errors} | {level['generator_lag_p99_ms']:.1f} "
            f"| {level['load_average_before'][0]:.2f} | {'yes' if level['held'] else 'no'} |"
        )
    per_run = ", ".join(
        f"run {run}: {'none' if best is None else f'{best:g}'}"
        for run, best in after["highest_level_holding_per_run"].items()
    )
    held = ", ".join(f"{level}/s {k}" for level, k in after["held_per_level"].items())
    return "\n".join(
        [*rows, "", f"Highest level holding, run by run: {per_run}.", f"Held per level: {held}."]
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--after", type=Path, help="a scripts.bench.feed JSON to adopt")
    parser.add_argument("--out", type=Path, default=PICTURE)
    parser.add_argument("--table", action="store_true", help="print the after run as Markdown")
    args = parser.parse_args()
    if args.after is not None:
        adopt(args.after)
    if args.table:
        print(markdown(json.loads(AFTER.read_text())))
        return
    before = json.loads(BEFORE.read_text())
    after = json.loads(AFTER.read_text()) if AFTER.exists() else None
    draw(before, after, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
