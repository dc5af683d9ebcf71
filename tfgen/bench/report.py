"""The results of `tfgen.bench.run` as files: the FLOP goal verdict, the Markdown table, throughput.json/.md."""

from __future__ import annotations

import math

import numpy as np

from tfgen.bench.hardware import MATMUL_SIZE, compute_dtype
from tfgen.bench.profile import format_categories

FLOP_GOAL = 0.60  # the `default` presets' training step, as a fraction of the measured matmul FLOP/s


def flop_goal(results: dict) -> dict:
    """The project's goal for its own `default` presets on its own data, met or not per model
    (benchmarks/throughput.py; `tfgen bench` reports measurements only)."""
    rows = {}
    for name, presets in results["models"].items():
        entry = presets.get("default")
        if entry is None or "fraction_of_matmul_peak" not in entry["train"]:
            continue
        fraction = entry["train"]["fraction_of_matmul_peak"]
        row = {"fraction": fraction, "met": fraction >= FLOP_GOAL}
        if not row["met"] and "profile" in entry:
            row["why"] = entry["profile"].get("summary")
        rows[name] = row
    return {"goal": FLOP_GOAL, "models": rows}



# ---------------------------------------------------------------------- output
def format_cell(value, spec=".0f", missing="—") -> str:
    """`value` formatted by `spec` for a table cell; `missing` for None or a non-finite number."""
    return missing if value is None or (isinstance(value, float) and not math.isfinite(value)) else format(value, spec)


def _data_note(results: dict) -> str:
    """How the dataset was read, when not as stored: " (image_size 32, channels 3)"."""
    given = {k: v for k, v in (results.get("data_options") or {}).items() if v is not None}
    return f" ({', '.join(f'{k} {v}' for k, v in given.items())})" if given else ""


def render_markdown(results: dict, extra: str = "") -> str:
    """The Markdown table of `run`'s results; `extra` (Markdown) is appended. A verdict on the project's
    FLOP goal is added only to results that carry one (`flop_goal`: benchmarks/throughput.py's)."""
    m, peak = results["machine"], results["matmul"]["before"]["gflops"]
    after = results["matmul"].get("after", {}).get("gflops")
    s = results["settings"]
    lines = [
        f"Measured with `{results['command']}` on {results['date']}, {m['cpus']} CPU cores ({m['cpu']}), "
        f"TensorFlow {m['tensorflow']}, dataset `{results['dataset']}`{_data_note(results)}, no XLA. Dense fp32 matmul "
        f"({MATMUL_SIZE}×{MATMUL_SIZE}) on this machine in this run: {peak:.1f} GFLOP/s"
        + (f" before the models, {after:.1f} after; % of matmul is of the faster, {max(peak, after):.1f}"
           if after else "") + ".",
        "",
        "| model | preset | batch | train images/s | compile s | GFLOP/step | GFLOP/s | % of matmul | input wait "
        "| sample images/s (n, steps) | peak memory MB |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, presets in results["models"].items():
        for preset, e in presets.items():
            t, smp = e["train"], e["sample"]
            steps = f", {smp['steps']} steps" if "steps" in smp else ""
            fraction = format_cell(100 * t.get("fraction_of_matmul_peak", float("nan")))
            lines.append(
                f"| `{name}` | {preset} | {e['batch_size']} | {t['images_per_second']:.0f} "
                f"| {t['compile_seconds']:.1f} | {t['gflop_per_step']:.2f} | {t['gflops']:.1f} | {fraction}% "
                f"| {100 * e['input']['wait_fraction']:.1f}% | {smp['images_per_second']:.1f} ({smp['n']}{steps}) "
                f"| {e['memory']['peak_rss_increase_mb']:.0f} |")
    lines += ["", f"Training: median of {s['steps']} `fit` steps after {s['warmup']} warm-up steps (compile s: the "
                  "first step's tracing and graph optimisation, beyond one steady step). GFLOP/step: counted on the "
                  "traced `train_step` graph (forward and backward). Input wait: share of the step lost to the input "
                  "pipeline (same step fed one batch held in memory vs fed by the pipeline). Peak memory: resident "
                  "set size increase while the model was built, trained and sampled (a lower bound: memory freed by "
                  "an earlier model is reused). Full figures and methods in `throughput.json`."]
    lines += precision_lines(results)
    goal = results.get("flop_goal", {})
    if goal.get("models"):
        lines += ["", f"Goal: `default` presets' training step at ≥ {100 * goal['goal']:.0f}% of the matmul FLOP/s.",
                  ""]
        for name, row in goal["models"].items():
            verdict = "met" if row["met"] else "not met"
            why = f" Why (profile): {row['why']}." if row.get("why") else ""
            lines.append(f"* `{name}`: {100 * row['fraction']:.0f}% — {verdict}.{why}")
    if extra:
        lines += ["", extra.rstrip("\n")]
    return "\n".join(lines) + "\n"


def precision_lines(results: dict) -> list[str]:
    """The per-precision table (one row per model, preset and precision), when `run` measured more than float32."""
    rows = [(name, preset, precision, row) for name, presets in results["models"].items()
            for preset, e in presets.items() for precision, row in e.get("by_precision", {}).items()]
    if not rows:
        return []
    peaks = results["peaks"]
    measured = "; ".join(f"{dtype} matmul {p['reference_gflops']:.1f}, 3×3 conv {p['conv_reference_gflops']:.1f}"
                         for dtype, p in sorted(peaks.items(), key=lambda item: item[0] != "float32"))
    lines = ["", f"Peaks in this run (GFLOP/s, the faster of before and after the models): {measured}.", "",
             "| model | preset | precision | train images/s | × float32 | GFLOP/s | % of its dtype's matmul "
             "| % of float32 matmul | sample images/s | where op time goes (profile) |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for name, preset, precision, row in rows:
        t, profile = row["train"], row.get("profile")
        where = format_categories(profile["categories"]) if profile and "categories" in profile else "—"
        lines.append(
            f"| `{name}` | {preset} | {precision} | {t['images_per_second']:.0f} "
            f"| {format_cell(t.get('speedup_vs_float32'), '.2f')} | {t['gflops']:.1f} "
            f"| {format_cell(100 * t.get('fraction_of_dtype_peak', math.nan))}% "
            f"| {format_cell(100 * t.get('fraction_of_float32_peak', math.nan))}% "
            f"| {row['sample']['images_per_second']:.1f} | {where} |")
    s = results["settings"]
    lines += ["", f"Each precision's own model (same seed), trained side by side: {s['steps']} steps in "
                  f"alternating rounds on the same batches held in memory, median per precision. % of its "
                  f"dtype's matmul: of the matmul peak in its compute dtype ("
                  + ", ".join(f"{p} → {compute_dtype(p)}" for p in s["precisions"]) + "). Profile shares of op "
                  "time: convolutions, matmuls, casts, normalisation, optimiser updates, everything else."]
    return lines


def write_results(results: dict, out, extra: str = "") -> tuple:
    """Write `out/throughput.json` and `out/throughput.md` (atomically); return their paths."""
    from pathlib import Path

    from tfgen.io import write_json, write_text

    out = Path(out)
    json_path, md_path = out / "throughput.json", out / "throughput.md"
    write_json(json_path, _finite(results))
    write_text(md_path, render_markdown(results, extra))
    return json_path, md_path


def _finite(value):
    """JSON has no NaN/inf: write them as null."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value
