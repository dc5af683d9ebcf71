"""benchmarks/results/sampling.json, shared by the sampling benchmarks, and its README table.

`diffusion_sampling.py` and `ar_sampling.py` each own one key of sampling.json
("diffusion", "autoregressive"); `merge_results` rewrites that key only and then
regenerates sampling.md from the whole file, which README.md embeds
(benchmarks/render_readme.py).

    python -m benchmarks.sampling_results      # re-render sampling.md from sampling.json
"""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks import common

RESULTS = common.RESULTS / "sampling.json"


def merge_results(path: Path, key: str, value) -> None:
    """Read-modify-write one key of the shared JSON file (atomic rename), then re-render its table."""
    from tfgen.io import write_json, write_text

    path = Path(path)
    data = json.loads(path.read_text()) if path.exists() else {}
    data[key] = value
    write_json(path, data)
    write_text(path.with_suffix(".md"), markdown(data))


def markdown(data: dict) -> str:
    rows = ["| model | images | (a) keras.io-style `predict` loop | (b) tfgen compiled sampler | (c) reference | "
            "speed-up (a)/(b) | goal |",
            "|---|---:|---|---|---|---:|---|"]
    notes = []
    if "diffusion" in data:
        d = data["diffusion"]
        a, b, c = d["a_ddpm_1000_predict_loop"], d["b_ddim_50_compiled"], d["c_ddim_50_predict_loop"]
        rows.append(
            f"| `diffusion` | {d['images']} | DDPM 1000 steps: {a['seconds']:.0f} s{_star(a)} "
            f"| DDIM 50 steps: {b['seconds']:.2f} s | DDIM 50 via `predict`: {c['seconds']:.2f} s "
            f"| {d['speedup_a_over_b']:.0f}× | ≥ 20× |")
        if d.get("fid"):
            f = d["fid"]
            notes.append(
                f"Diffusion sample quality, {f['samples']} samples each, FID on evaluator features (not Inception): "
                f"DDPM-1000 {f['a_ddpm_1000']:.2f}, DDIM-50 {f['b_ddim_50']:.2f} "
                f"({100 * (f['b_ddim_50'] / f['a_ddpm_1000'] - 1):+.0f}%; goal within ±10%); two halves of "
                f"the real test split score {f['real_vs_real']:.2f}.")
        else:
            notes.append("Diffusion sample quality of (a) vs (b) not measured in this run (`--fid-samples 0`).")
        notes.append(f"Diffusion: command `{d['command']}`, {d['date']}.")
    if "autoregressive" in data:
        ar = data["autoregressive"]
        for name in ("pixel_transformer", "pixelcnn"):
            if name not in ar:
                continue
            r = ar[name]
            a, b, c = r["a_predict_loop"], r["b_compiled_sampler"], r["c_compiled_forward_loop"]
            rows.append(
                f"| `{name}` | {r['images']} | one `predict` per pixel: {a['seconds']:.0f} s{_star(a)} "
                f"| cached `tf.while_loop`: {b['seconds']:.1f} s "
                f"| full forward pass per pixel in a `tf.function`: {c['seconds']:.0f} s{_star(c)} "
                f"| {r['speedup_a_over_b']:.0f}× | ≥ {r['goal_speedup_a_over_b']:.0f}× |")
        notes.append(f"Autoregressive: command `{ar['command']}`, {ar['date']}.")
    notes.append("\\* timed on part of the loop and extrapolated linearly: every step of these loops is the "
                 "same call on the same shapes. Wall-clock seconds on this machine; see "
                 "`benchmarks/results/sampling.json` for CPU seconds and load averages.")
    return "\n".join(rows + [""] + [n + "\n" for n in notes])


def _star(entry: dict) -> str:
    return "\\*" if entry.get("extrapolated") else ""


if __name__ == "__main__":
    from tfgen.io import write_text

    write_text(RESULTS.with_suffix(".md"), markdown(json.loads(RESULTS.read_text())))
    print(f"wrote {RESULTS.with_suffix('.md')}")
