"""One table from lmms-eval results files: ``python -m fastv.integrations.lmms_eval.summarize OUT_DIR...``.

Each row is one (run, task): the model_args lmms-eval recorded (the pruning setting), each accuracy
metric, and the share of prefill FLOPs left (the task's ``flops_pct``, else the run's throughput record).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

_NOT_ACCURACY = ("flops_pct", "alias")


def result_files(paths: list[str]) -> list[Path]:
    """``*_results.json`` files under ``paths`` (files are taken as given), oldest first."""
    found: list[Path] = []
    for p in map(Path, paths):
        found += [p] if p.is_file() else sorted(p.rglob("*_results.json"))
    return sorted(found, key=lambda f: f.stat().st_mtime)


def rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """(setting, task, metric, value, FLOPs %) for each accuracy metric of one results dict."""
    config, throughput = results.get("config", {}), results.get("throughput", {})
    setting = str(config.get("model_args") or config.get("model", ""))
    out = []
    for task, metrics in sorted(results.get("results", {}).items()):
        flops = metrics.get("flops_pct,none", throughput.get(f"avg_fastv_flops_pct/{task}"))
        for key, value in metrics.items():
            name = key.partition(",")[0]
            if "stderr" in name or name in _NOT_ACCURACY or not isinstance(value, (int, float)):
                continue
            out.append({"setting": setting, "task": task, "metric": name, "value": value, "flops_pct": flops})
    return out


def markdown(table: list[dict[str, Any]]) -> str:
    lines = ["| model_args | task | metric | value | prefill FLOPs |", "|---|---|---|---:|---:|"]
    for r in table:
        flops = "n/a" if r["flops_pct"] is None else f"{r['flops_pct']:.1f}%"
        lines.append(f"| {r['setting']} | {r['task']} | {r['metric']} | {r['value']:.4f} | {flops} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fastv.integrations.lmms_eval.summarize", description=__doc__)
    parser.add_argument("paths", nargs="+", help="lmms-eval --output_path folders or *_results.json files")
    args = parser.parse_args(argv)
    table = [r for f in result_files(args.paths) for r in rows(json.loads(f.read_text(encoding="utf-8")))]
    if not table:
        parser.error("no *_results.json with results found (lmms-eval exits 0 even when a run failed: check its log)")
    print(markdown(table))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
