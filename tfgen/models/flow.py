"""Flow matching / rectified flow (Lipman et al. 2023, "Flow Matching for Generative Modeling";
Liu et al. 2023, "Flow Straight and Fast: Learning to Generate and Transfer Data with Rectified Flow").

The data x_0 (pixels in [−1, 1]) and Gaussian noise ε are joined by straight lines,

    x_t = (1 − t) x_0 + t ε,  t ∈ [0, 1],

whose velocity dx_t/dt = ε − x_0 is the regression target: the U-Net of `diffusion`
(`tfgen.layers.unet`, fed the continuous time as 1000·t) learns v(x_t, t) = E[ε − x_0 | x_t]
by minimising ‖ε − x_0 − v̂(x_t, t)‖², the conditional flow-matching loss (Lipman et al.,
eq. 9 and 23). Training draws t logit-normal (Esser et al. 2024, "Scaling Rectified Flow
Transformers for High-Resolution Image Synthesis", §3.1; `schedules.FlowPath` says why) or
uniform. The path's arithmetic is `tfgen.schedules.FlowPath`.

Sampling integrates the ODE dx/dt = v(x, t) from x_1 ~ N(0, I) at t = 1 to t = 0 in one
compiled `tf.while_loop` (`tfgen.samplers`): `euler` (one network call per step, the
sampler of Liu et al. and Esser et al.) or `heun` (Heun's second-order method, Karras et
al. 2022, Alg. 1 without churn: two calls per step but a much smaller error at a given step
count, see `samplers.Heun`). The path is deterministic given x_1.

Everything else is `diffusion`'s (`DenoisingModel`): EMA weights for sampling, class labels
with label dropout and classifier-free guidance ṽ = v(x, ∅) + guidance · (v(x, c) − v(x, ∅)),
label −1 for the unconditional model, the SavedModel endpoints `sample(noise, labels)` and
`settings`.

Presets, fit defaults and flags: `flow.json` beside this module (see `tfgen.catalog`).
"""

from __future__ import annotations

from tfgen import checks, samplers, schedules
from tfgen.models.diffusion import DenoisingModel
from tfgen.registry import register_model

SAMPLERS = ("euler", "heun")


@register_model("flow")
class Flow(DenoisingModel):
    """A U-Net trained by flow matching on the straight data-to-noise path; Euler or Heun sampling."""

    SAMPLERS = SAMPLERS

    def __init__(self, time_distribution="logit_normal", **kwargs):
        self.time_distribution = checks.one_of(time_distribution, schedules.TIME_DISTRIBUTIONS, "time distribution")
        super().__init__(**kwargs)

    def build_process(self):
        return schedules.FlowPath(self.time_distribution)

    #: RePaint's sampler (`complete`): Euler, one network call per step.
    REPAINT_SAMPLER = "euler"

    def make_sampler(self, name, eta):
        return samplers.Heun() if name == "heun" else samplers.Euler()

    def sample(self, n, labels=None, steps=50, sampler="euler", guidance=None, seed=None):
        """Draw `n` images in [0, 1] by integrating the EMA network's velocity from t = 1 to 0 in `steps` steps.

        labels: None samples the unconditional model; an int, list, array or tensor of
            class ids samples those classes (an int repeats for all n), −1 the
            unconditional model for that sample.
        sampler: "euler" (`steps` network calls) or "heun" (2·steps calls, second order).
        guidance: classifier-free guidance scale (default: the model's `guidance`);
            1 disables it, used only when labels are given.
        seed: an int makes the draw reproducible (the noise x_1); None draws from the model's generator.
        """
        n = checks.positive_int(n, "n")
        checks.one_of(sampler, SAMPLERS, "sampler")
        return self.draw(n, labels, steps, sampler, guidance, seed)
