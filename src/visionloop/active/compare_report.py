"""The comparison report of a loop cycle: ``PROJECT/loop/<cycle id>/report.html`` (self-contained, like the
evaluation report, built on :mod:`visionloop.evaluation.html`) and ``comparison.json`` beside it.

It says what was decided and why, the main metric of both models with the bootstrap confidence interval of the
difference, the per-class numbers side by side, and thumbnails of the test images that got better and worse.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from visionloop.active.loop_state import LOOP_DIR
from visionloop.evaluation import html as h

__all__ = ["REPORT_FILE", "cycle_dir", "cycle_report_path", "write_compare_report"]

REPORT_FILE = "report.html"


def cycle_dir(project: Any, cycle_id: int, *, create: bool = False) -> Path:
    """``PROJECT/loop/<cycle id>``: the cycle's report and comparison."""
    path = Path(project.root) / LOOP_DIR / str(int(cycle_id))
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def cycle_report_path(project: Any, cycle: dict[str, Any]) -> Path | None:
    """The report of a cycle (a row's JSON), or None when it has none (running, failed before deciding)."""
    path = cycle_dir(project, int(cycle["id"])) / REPORT_FILE
    return path if path.is_file() else None


def _thumb(project: Any, sha256: str) -> str:
    from visionloop.core.imageio import decode

    try:
        return h.image_uri(decode(project.blobs.read(sha256)), max_side=160)
    except Exception:  # noqa: BLE001 - a missing or undecodable blob leaves an empty card, not a failed report
        return ""


def _gallery(project: Any, changes: list[dict[str, Any]], metric: str) -> str:
    if not changes:
        return "<p>None.</p>"
    cards = []
    for c in changes:
        if metric == "right":  # classification: each image is right or wrong
            change = " &rarr; ".join("right" if v > 0 else "wrong" for v in (c["champion"], c["challenger"]))
        else:
            change = f"{h.esc(metric)}: {c['champion']:.3f} &rarr; {c['challenger']:.3f}"
        caption = (f"<div>{h.esc(c['name'])}</div><div>{change}</div>"
                   + (f"<div>{h.esc(c['detail'])}</div>" if c.get("detail") else ""))
        cards.append((_thumb(project, c["sha256"]), caption))
    return h.gallery(cards)


def write_compare_report(project: Any, cycle_id: int, *, decision: dict[str, Any], comparison: dict[str, Any],
                         setup: dict[str, Any]) -> Path:
    """Write the cycle's ``report.html`` and ``comparison.json``; returns the report's path.

    ``decision``: ``state`` (promoted/kept), ``reason``, ``margin``; ``comparison``:
    :meth:`visionloop.active.loop_eval.Comparison.to_json` with the images' ``sha256``; ``setup``: trigger, versions,
    runs, recipe.
    """
    out = cycle_dir(project, cycle_id, create=True)
    b = comparison["bootstrap"]
    metric = b["metric"]
    verdict = "good" if decision["state"] == "promoted" else "bad"
    summary = (f'<p class="{verdict}">{h.esc(decision["state"].upper())}: {h.esc(decision["reason"])}</p>'
               + h.kv_table({f"champion {metric}": b["champion"], f"challenger {metric}": b["challenger"],
                             "difference (challenger - champion)": b["difference"],
                             f"{round(100 * b['confidence'])}% CI of the difference":
                                 f"[{b['ci_low']:.4f}, {b['ci_high']:.4f}]",
                             "promotion needs the CI's lower bound above": decision["margin"],
                             "test images": b["images"], "bootstrap resamples": b["resamples"], "seed": b["seed"],
                             "images better / worse": f"{comparison.get('n_better', 0)} / "
                                                      f"{comparison.get('n_worse', 0)}"}))
    per = comparison["per_class"]
    rows = []
    for name, v in per.items():
        a, c = v.get("champion"), v.get("challenger")
        rows.append([name, "-" if a is None else float(a), "-" if c is None else float(c),
                     "-" if a is None or c is None else float(c - a)])
    per_class = h.table(["class", f"champion {comparison['per_class_metric']}",
                         f"challenger {comparison['per_class_metric']}", "difference"], rows)
    image_metric = "right" if comparison.get("kind") == "classification" else metric
    parts = [
        h.section("Decision", summary),
        h.section("Per class", per_class),
        h.section("Test images that got better", _gallery(project, comparison["better"], image_metric)),
        h.section("Test images that got worse", _gallery(project, comparison["worse"], image_metric)),
        h.section("Setup", h.kv_table({k: json.dumps(v) if isinstance(v, dict | list) else v
                                       for k, v in setup.items()})),
    ]
    (out / "comparison.json").write_text(json.dumps({"decision": decision, "comparison": comparison, "setup": setup},
                                                    indent=1, default=str) + "\n", encoding="utf-8")
    return h.write_page(out / REPORT_FILE, f"Loop cycle {cycle_id}: champion vs challenger", "".join(parts),
                        subtitle=f"{setup.get('champion_run')} vs {setup.get('challenger_run')} on the test split of "
                                 f"{setup.get('test_version')}")
