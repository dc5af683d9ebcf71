"""Training and sampling throughput: the measurement core of `tfgen bench` and benchmarks/throughput.py.

For one registered model and preset, `measure` reports

* steady-state training images/second through `model.fit` (the path `tfgen train`
  uses, fed by the same `tf.data` pipeline): per-batch times from a callback, the
  median over the batches after `warmup`; the first batch's tracing and
  compilation is reported separately (`compile_seconds`);
* sampling images/second: `model.sample(n)` after a first (tracing) call;
* FLOPs per training step, counted on the traced graph of `train_step` (see
  `count_step_flops`), and the achieved FLOP/s as a fraction of the machine's
  dense fp32 matmul FLOP/s (`matmul_peak`, measured in the same process);
* with several precisions (`run(precisions=...)`), the same training and sampling
  figures under each dtype policy, timed side by side, against each compute dtype's
  own matmul peak and float32's;
* peak memory (resident set size, sampled while the model is built, trained and
  sampled: see `MemoryWatcher`);
* how much of the step time is spent waiting for input (see `input_wait`);
* optionally (`profile=True`), where the step time goes: TensorFlow's profiler,
  time per op type next to the FLOPs of that op type (`profile_step`).

`run` measures several models and presets and `render_markdown` writes the table.

Each job is a submodule; their public names are re-exported here:

* `tfgen.bench.suite` — `run` (several models and presets, the results dict) and `plan`;
* `tfgen.bench.measurement` — `measure`, one model and preset;
* `tfgen.bench.inputs` — `training_pipeline` (the batches `tfgen train` feeds) and `input_wait`;
* `tfgen.bench.hardware` — `machine`, `matmul_peak`, `conv_peak` (the reference FLOP/s, per dtype);
* `tfgen.bench.timing` — `time_fit`, `time_calls`, several models timed in alternating rounds;
* `tfgen.bench.precisions` — one model under several dtype policies (`--precision float32,mixed_bfloat16`);
* `tfgen.bench.memory` — `MemoryWatcher` and RSS readings;
* `tfgen.bench.flops` — `count_step_flops` on a traced step (`step_function`);
* `tfgen.bench.profile` — `profile_step`, `summarize_profile`;
* `tfgen.bench.report` — `render_markdown`, `write_results`, `format_cell`, and the project's FLOP goal
  (`flop_goal`: benchmarks/throughput.py's, not part of `run`'s measurements);
* `tfgen.bench.options` — `options_from_args`, the settings of a run from the options `tfgen bench`
  and benchmarks/throughput.py share.
"""

from tfgen.bench.flops import count_step_flops, step_function
from tfgen.bench.hardware import conv_peak, machine, matmul_peak, peaks
from tfgen.bench.inputs import input_wait, training_pipeline
from tfgen.bench.measurement import measure
from tfgen.bench.memory import MemoryWatcher
from tfgen.bench.options import options_from_args, quick_settings, split_names
from tfgen.bench.precisions import measure_precisions
from tfgen.bench.profile import profile_step, summarize_profile
from tfgen.bench.report import flop_goal, format_cell, render_markdown, write_results
from tfgen.bench.suite import plan, run
from tfgen.bench.timing import alternating_step_seconds, held_batches, time_calls, time_fit

__all__ = ["measure", "run", "plan", "machine", "matmul_peak", "conv_peak", "peaks", "measure_precisions",
           "held_batches", "alternating_step_seconds", "time_calls", "count_step_flops", "profile_step",
           "summarize_profile", "render_markdown", "write_results", "format_cell", "MemoryWatcher", "time_fit",
           "training_pipeline", "input_wait", "step_function", "quick_settings", "split_names", "options_from_args",
           "flop_goal"]
