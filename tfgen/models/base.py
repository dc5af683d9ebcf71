"""Scaffolding shared by every tfgen model.

A tfgen model is a `keras.Model` subclass with a custom `train_step`, trained
with `model.fit` on batches of `(images, labels)` in [0, 1], NHWC, float32.
This module holds what every family needs and nothing family-specific:

* presets (`from_preset`) with hyperparameter validation, and `get_config`
  derived from the constructor's arguments (`hyperparameters()`);
* batch unpacking and shape checks that fail at trace time with a clear message;
* loss trackers listed in `metrics` (so Keras resets them every epoch);
* one `minimize` helper that handles what custom steps usually get wrong:
  loss scaling for mixed precision and division by the replica count under
  `tf.distribute` (gradients are summed across replicas);
* random draws from the model's `SeedGenerator`, folded with the replica id
  so that replicas do not all draw the same noise.
"""

from __future__ import annotations

import inspect

import keras
import numpy as np
import tensorflow as tf

from tfgen import checks
from tfgen.layers import conditioning, resolution


class GenerativeModel(keras.Model):
    """Base class: subclasses define `train_step` and `sample`, take their presets from a data file
    beside their module (`@register_model`), and store every constructor argument under its own name
    (that is their config)."""

    # What the family's data file says (`tfgen/models/<module>.json`, see `tfgen.catalog`), given to
    # the class by `@register_model`: the data file is their one owner.
    #: Hyperparameters by preset name.
    PRESETS: dict[str, dict] = {}
    #: Former preset names that still work (`from_preset`) but are not listed: {old: current}.
    PRESET_ALIASES: dict[str, str] = {}
    #: What `tfgen train` / `tfgen.train` use when no length or batch size is given (steps, not passes:
    #: a small folder gets as many updates); `tfgen.catalog.default_batch_size` reads the batch.
    FIT_DEFAULTS: dict = {}
    #: Whether the model needs class labels in every training batch (and `sample` draws them when not
    #: given). Every model that requires labels accepts them (`accepts_labels`).
    requires_labels = False
    #: Set by `@register_model`.
    registry_name = None
    #: Whether the networks halve the resolution level by level, their depth following the image
    #: size (`tfgen.layers.resolution`): such families refuse sizes that do not halve to 4–8 pixels.
    halving_networks = False
    #: The presets that `--precision auto` trains in mixed_bfloat16 on devices that compute bfloat16
    #: natively (`tfgen.precision.resolve_precision`): only where measured faster at equal quality.
    AUTO_BFLOAT16: tuple[str, ...] = ()
    #: Whether samples get better (or stay as good) the longer the model trains. False (GANs) makes
    #: `tfgen train` keep the best-scoring epoch by default (`--keep best`, `tfgen.keep_best`).
    quality_monotone = True

    def __init__(self, image_shape=(28, 28, 1), num_classes=10, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.image_shape = self.check_image_size(image_shape)
        self.num_classes = checks.positive_int(num_classes, "num_classes")
        self.seed = seed
        # The model's own draws (training noise, sampling). Weight initialisers follow Keras'
        # global seed like any layer's (`keras.utils.set_random_seed`; `tfgen.train` sets it).
        self.seed_generator = keras.random.SeedGenerator(seed)
        self._trackers: dict[str, keras.metrics.Mean] = {}
        # Compiled functions (`cached_function`): set without Keras' attribute tracking, which would
        # make them part of the model's TensorFlow object graph. A cache, not state to save.
        object.__setattr__(self, "_compiled_functions", {})
        # Subclasses build every sub-network in __init__ as a functional model, so
        # all variables exist from construction: nothing is left for `build`.
        self.built = True

    # ------------------------------------------------------------------ presets / config
    @classmethod
    def from_preset(cls, preset: str = "default", **overrides):
        """Build from a named preset; keyword arguments override its hyperparameters."""
        check_hyperparameters(cls, overrides)
        return cls(**{**cls.preset_hyperparameters(preset), **overrides})

    @classmethod
    def preset_hyperparameters(cls, preset: str) -> dict:
        """The hyperparameters of the preset called `preset` (or by a former name, `PRESET_ALIASES`)."""
        preset = cls.PRESET_ALIASES.get(preset, preset)
        if preset not in cls.PRESETS:
            raise checks.unknown_name(preset, cls.PRESETS, "preset", owner=cls.registry_name or cls.__name__)
        return dict(cls.PRESETS[preset])

    @classmethod
    def check_image_size(cls, image_shape, **hyperparameters) -> tuple[int, int, int]:
        """`image_shape` as (height, width, channels) ints if this family can be built for it, else a
        one-line ValueError naming the family, the size and the sizes it can use.

        The one check of "can this model take images of this size": the constructor, `tfgen.train`
        (before any data is read) and the tests call it. `hyperparameters` are the constructor's (a
        preset's, with overrides), for families whose sizes depend on them (the GAN's `mlp`
        architecture). Nothing is built. Families say why a size fails in `image_size_error`.
        """
        if len(image_shape) != 3:
            raise ValueError(f"image_shape must be (height, width, channels), got {tuple(image_shape)}")
        shape = tuple(checks.positive_int(d, "image_shape entries") for d in image_shape)
        error = cls.image_size_error(shape, **hyperparameters)
        if error:
            raise ValueError(f"{cls.__name__} {error}")
        return shape

    @classmethod
    def image_size_error(cls, image_shape, **hyperparameters) -> str | None:
        """Why this family cannot use images of `image_shape` (height, width, channels ints), completing
        "<family> ...", or None if it can. Families whose networks halve the resolution level by level
        (`halving_networks`) take the sizes of `tfgen.layers.resolution`; the others any. Families with
        their own rule override this, not `check_image_size`."""
        return resolution.size_error(image_shape) if cls.halving_networks else None

    @classmethod
    def hyperparameters(cls) -> dict[str, inspect.Parameter]:
        """Constructor arguments (across the class hierarchy) that a user may set."""
        params = {}
        for klass in reversed(cls.__mro__):
            if klass is GenerativeModel or issubclass(klass, GenerativeModel):
                for name, p in inspect.signature(klass.__init__).parameters.items():
                    if name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
                        params[name] = p
        return params

    def get_config(self):
        """Keras' own entries plus every hyperparameter, read from the attribute of the same name.

        The constructor is the config (as with diffusers' `register_to_config`): a family
        adds a hyperparameter by taking it in `__init__` and storing it as `self.<name>`,
        and nothing else. Tuples are saved as lists, as JSON would make them anyway.
        """
        config = super().get_config()
        for name in self.hyperparameters():
            if not hasattr(self, name):
                raise TypeError(f"{type(self).__name__}.__init__ takes {name!r} but stores no attribute of that "
                                f"name: get_config reads every constructor argument from self.{name}")
            config[name] = _config_value(getattr(self, name))
        return config

    @classmethod
    def from_config(cls, config):
        """Rebuild under the saved model's dtype policy (mixed precision survives a reload).

        The sub-networks are built in `__init__` and take the *global* policy: without
        this, a `mixed_float16` model reloaded in a float32 process (`tfgen sample`,
        `export`, `eval`) would compute in float32, behind a loss-scaling optimiser.
        """
        policy = config.get("dtype")
        if policy is None:
            return super().from_config(config)
        previous = keras.config.dtype_policy()
        keras.config.set_dtype_policy(keras.dtype_policies.get(policy))
        try:
            return super().from_config(config)
        finally:
            keras.config.set_dtype_policy(previous)

    @classmethod
    def unlabelled_overrides(cls) -> dict:
        """Hyperparameters that `tfgen.train` sets, unless the user did, for a dataset without labels.

        {} by default; a family whose labels are optional (class-conditional diffusion) turns
        its conditioning off, so that a one-class label embedding is not learned for nothing.
        """
        return {}

    @classmethod
    def small_data_overrides(cls, num_examples: int) -> dict:
        """Hyperparameters that `tfgen.train` sets, unless the user did, for a training set of `num_examples` images.

        {} by default; a family with a remedy for small data sets (the GANs' differentiable
        augmentation, against a discriminator that memorises a few thousand images) turns it on
        below the size at which it was found to help.
        """
        return {}

    @property
    def accepts_labels(self) -> bool:
        """Whether the model takes class labels (`sample(n, labels=...)`, labels in batches).

        Models that require labels (`requires_labels`) always do; a family whose labels are
        optional (diffusion trained with class conditioning) says so by overriding
        this. Grids, `tfgen sample --labels` and evaluation read it.
        """
        return bool(self.requires_labels)

    def health_checks(self) -> list:
        """The family's training-health figures (`tfgen.health.HealthCheck`s): measured every epoch by
        `tfgen train` and once by `tfgen eval`. None by default; a family lists its own."""
        return []

    # ------------------------------------------------------------------ batches
    def unpack(self, data):
        """Split a batch into (images, labels), check the image shape and the labels.

        Shapes are checked on the static shape, so a wrong dataset fails when
        `fit` traces the step, before any training, with a message that says
        what the model expected. Labels of a model that takes them are checked
        by `conditioning.as_labels` (graph assertions inside a step): an
        out-of-range label fails the step instead of reading another embedding row.
        """
        if isinstance(data, (tuple, list)):
            images, labels = data[0], (data[1] if len(data) > 1 else None)
        elif isinstance(data, dict):
            images, labels = data["images"], data.get("labels")
        else:
            images, labels = data, None
        images = self.check_images(images)
        if self.requires_labels and labels is None:
            raise ValueError(f"{type(self).__name__} requires labels: batches must be (images, labels), got images only")
        if labels is not None:
            if self.accepts_labels:
                labels = conditioning.as_labels(labels, self.num_classes)
            else:  # ignored by the model
                labels = tf.cast(tf.reshape(labels, [-1]), tf.int32)
        return images, labels

    def fit(self, x=None, y=None, *args, **kwargs):
        """Keras' `fit`, after one eager check of the first batch.

        A batch the model cannot train on (0-255 pixels from `keras.utils.image_dataset_from_directory`,
        the wrong image size, one-hot labels) otherwise fails inside the first compiled step, as
        `InvalidArgumentError: Graph execution error` with the reason at the end of a long message
        (and under XLA, which drops assertions, not at all). `unpack` on the first batch of a
        `tf.data.Dataset` (or of NumPy arrays), eagerly, says it in one line before any step runs.
        Reading that batch costs one batch of the input pipeline (a shuffle fills its buffer once), and
        is one more pass started over the dataset: one that reshuffles on every pass from a fixed seed
        (`reshuffle_each_iteration=True`) trains in the order of its second pass, still the same on
        every run with that seed. (`tfgen train`'s own batches are seeded per epoch, not per pass.)

        A dataset is taken in its own order: Keras ignores `shuffle` for one, and warns on every
        call that its default `shuffle=True` "will be ignored", so tfgen passes `shuffle=False`
        unless the caller gives `shuffle`.
        """
        if isinstance(x, tf.data.Dataset):
            first = next(iter(x.take(1)), None)
            if first is not None:  # an empty dataset: Keras says so itself
                self.unpack(first)
            if len(args) < 6:  # `shuffle` is fit's 8th positional parameter (after x, y)
                kwargs.setdefault("shuffle", False)
        elif isinstance(x, np.ndarray) and len(x):
            batch = kwargs.get("batch_size") or (args[0] if args and args[0] else 32)
            self.unpack((x[:batch], None if y is None else np.asarray(y)[:batch]))
        return super().fit(x, y, *args, **kwargs)

    def prepare_training_data(self, examples, augment=None) -> bool:
        """Called by `tfgen.train` before `fit` with the training split (`tfgen.data.Examples`) and its
        augmentation: a family that computes something once per training image (latent diffusion's
        latents) sets that up here and returns True; `fit`'s batches then carry each image's id
        (`tfgen.data.pipeline.training_batches(..., with_ids=True)`). By default nothing: False."""
        return False

    def check_images(self, images):
        """`images` as a float32 tensor, after checking its shape against `image_shape`.

        Loss maths stays in float32 under mixed precision; layers cast their own inputs.
        """
        images = tf.convert_to_tensor(images)
        owner = type(self).__name__
        check_image_shape(images.shape, self.image_shape, owner)
        if not images.dtype.is_floating:
            raise ValueError(f"{owner} expects float images in [0, 1], got {images.dtype.name} images: "
                             f"divide 0-255 pixels by 255 (tfgen.data.load does)")
        return check_pixel_range(tf.cast(images, "float32"), owner)

    # ------------------------------------------------------------------ metrics
    def track(self, values: dict) -> dict:
        """Update one `Mean` tracker per named value; return all current results."""
        for name, value in values.items():
            if name not in self._trackers:
                raise KeyError(f"no tracker {name!r}; declare it in __init__ with declare_metrics")
            self._trackers[name].update_state(value)
        results = {name: t.result() for name, t in self._trackers.items()}
        if _multi_worker(tf.distribute.get_strategy()):
            # Keras 3.15 averages step outputs across workers with `strategy.reduce("MEAN", v, axis=0)`,
            # which fails on scalars (keras-team/keras#20585). With an axis of length 1 it averages
            # the replicas' values into a scalar, as it does on one machine.
            results = {name: tf.reshape(value, [1]) for name, value in results.items()}
        return results

    def declare_metrics(self, *names: str) -> None:
        # Trackers are created in __init__ (not lazily in the step) so that Keras
        # tracks them, resets them each epoch and they exist under a strategy scope.
        for name in names:
            self._trackers[name] = keras.metrics.Mean(name=name)

    @property
    def metrics(self):
        return list(self._trackers.values())

    # ------------------------------------------------------------------ optimisation
    @staticmethod
    def per_replica(loss):
        """Scale a hand-reduced loss for gradient summation across replicas."""
        return loss / tf.distribute.get_strategy().num_replicas_in_sync

    def wrap_optimizer(self, optimizer):
        """Wrap in a `LossScaleOptimizer` under float16 mixed precision.

        Keras does this for `compile(optimizer=...)` only; extra optimisers (a GAN's
        two) need it done by hand or float16 gradients underflow.
        """
        if self.dtype_policy.name == "mixed_float16" and not isinstance(
            optimizer, keras.optimizers.LossScaleOptimizer
        ):
            return keras.optimizers.LossScaleOptimizer(optimizer)
        return optimizer

    @staticmethod
    def minimize(optimizer, tape, scaled_loss, variables):
        """Apply gradients of `scaled_loss` (from `optimizer.scale_loss`, inside the tape)."""
        grads = tape.gradient(scaled_loss, variables)
        if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
            grads = _overflow_on_every_replica_if_on_one(grads)
        optimizer.apply(grads, variables)

    @property
    def training_steps(self):
        """Optimiser steps trained so far (a scalar tensor): what `--steps` counts and resume checks.

        `optimizer.iterations` for most families (a GAN gives Keras its generator's optimiser);
        a family that trains in stages with an optimiser each (latent diffusion) adds them up.
        """
        return self.optimizer.iterations.value

    # ------------------------------------------------------------------ randomness
    def draw_seed(self, seed=None):
        """A stateless-RNG seed: fixed for an int `seed`, else the next from the model's generator.

        Under `tf.distribute` every replica holds the same generator state, so the
        replica id is folded in: without it every replica would draw identical noise.
        """
        if seed is not None:
            return tf.constant([int(seed), 0], dtype=tf.int64)
        state = tf.cast(self.seed_generator.next(), tf.int64)
        ctx = tf.distribute.get_replica_context()
        if ctx is not None and ctx.num_replicas_in_sync > 1:
            state = tf.random.experimental.stateless_fold_in(state, ctx.replica_id_in_sync_group)
        return state

    def normal(self, shape, seed=None, dtype="float32"):
        return tf.random.stateless_normal(shape, seed=self.draw_seed(seed), dtype=dtype)

    def cached_function(self, key, build):
        """The function `build()` returns (a `tf.function`), built once per model and `key`.

        Cached outside Keras' attribute tracking: a traced graph is neither a weight
        to save nor something `tf.saved_model.save` should serialise with the model.
        """
        if key not in self._compiled_functions:
            self._compiled_functions[key] = build()
        return self._compiled_functions[key]

    # ------------------------------------------------------------------ generation
    def sample(self, n: int, labels=None, seed=None):
        """Draw `n` images in [0, 1], NHWC float32."""
        raise NotImplementedError

    #: Why this family cannot complete a given image, in one line (families that can override `complete_batch`).
    CANNOT_COMPLETE = "it has no way to condition its samples on given pixels"

    @property
    def can_complete(self) -> bool:
        """Whether `complete` works for this family (it overrides `complete_batch`)."""
        return type(self).complete_batch is not GenerativeModel.complete_batch

    def complete(self, images, mask, n: int = 1, seed=None, labels=None, **options):
        """Fill in the unknown pixels of `images`: `n` completions of each, (B, n, H, W, C) in [0, 1].

        images: (B, H, W, C) in [0, 1]. mask: 1 where a pixel is known, 0 where it is filled in —
        one mask for all images or one per image, per pixel or per sub-pixel (`tfgen.complete.check_mask`:
        wrong shapes, values other than 0/1, masks that keep or hide a whole image are one-line errors).
        labels: class ids of the images, for models that take labels (an int: the same for all).
        seed: an int makes the completions reproducible. `options`: the family's (see its `complete_batch`).
        What each family does (exact conditional, RePaint, latent iteration) is its `complete_batch`'s docstring;
        one that cannot raises `CompletionNotSupported` saying why (`CANNOT_COMPLETE`). All of image i's
        completions are computed in one batch with the other images': call it with many images at once.
        """
        from tfgen.complete import check_mask, repeat_for_completions

        if not self.can_complete:
            self.complete_batch(None, None, None, None)  # raises, naming the family and why
        n = checks.positive_int(n, "n")
        images = self.check_images(images)
        batch = images.shape[0]
        mask = check_mask(mask, images.shape)
        if labels is not None and np.ndim(labels) > 0:
            if len(labels) != batch:
                raise ValueError(f"labels: expected one per image ({batch}), got {len(labels)}")
            labels = repeat_for_completions(labels, n)
        out = self.complete_batch(tf.repeat(images, n, axis=0), tf.constant(repeat_for_completions(mask, n)),
                                  labels, seed, **options)
        return tf.reshape(out, [batch, n, *self.image_shape])

    def complete_batch(self, images, mask, labels, seed, **options):
        """One completion per row: images and mask (N, H, W, C) float32 (mask 0/1, checked), labels as given
        (None, an int, or N ids), seed an int or None; returns (N, H, W, C) in [0, 1]. Families override this."""
        raise CompletionNotSupported(f"{self.registry_name or type(self).__name__} cannot complete a given image: "
                                     f"{self.CANNOT_COMPLETE}")

    def default_compile(self, **kwargs):
        """Compile with the optimiser settings stored in the model's hyperparameters."""
        raise NotImplementedError

    def compile_from_config(self, config):
        """Recompile a reloaded `.keras` model, so its optimiser state can be restored.

        Keras skips this (with only a warning) for any model that overrides
        `compile()`, and the reloaded model then has no optimiser at all. Do what
        Keras does for the others; families with extra optimisers (GAN) override it.
        """
        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.optimizer is not None and not self.optimizer.built:
            self.optimizer.build(self.trainable_variables)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        """Build what `fit` would build before the first step: here, only the optimiser.

        Keras 3.15 first averages a data batch across replicas to trace the model
        symbolically, which fails under MultiWorkerMirroredStrategy (a tuple batch;
        keras-team/keras#20585). A tfgen model is built at construction and compiled
        without Keras losses or metrics (its trackers are built too), so the optimiser
        is all there is to build; any other compile goes through Keras' own path.
        """
        if getattr(self, "_compile_loss", None) is not None or getattr(self, "_compile_metrics", None) is not None:
            return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)
        if self.optimizer is not None and not self.optimizer.built:
            with self.distribute_strategy.scope():
                self.optimizer.build(self.trainable_variables)

    def export_endpoints(self) -> dict:
        """The functions a SavedModel export serves: `{name: (fn, [tf.TensorSpec, ...])}`.

        `tfgen.export` turns each entry into an endpoint with that fixed input
        signature (AutoGraph off: loops must be `tf.while_loop`s). Conventions:
        randomness comes in as inputs (noise tensors, or an int seed), so an
        endpoint is deterministic; images come out in [0, 1], float32, NHWC;
        `sample` is the default endpoint. An optional `"settings"` entry with an
        empty signature returns a dict of constants (e.g. a sampler's step count)
        that were fixed at export time.
        """
        raise NotImplementedError(
            f"model family {self.registry_name or type(self).__name__!r} does not declare export endpoints: "
            f"implement export_endpoints() in {type(self).__module__}"
        )


class CompletionNotSupported(NotImplementedError, ValueError):
    """A family that cannot complete a given image (`GenerativeModel.complete`); a ValueError too, so the command line
    prints its one line."""


def stateless_seed(seed):
    """An int64 scalar seed tensor → what `draw_seed(int seed)` gives: [seed, 0]."""
    return tf.stack([tf.cast(seed, tf.int64), tf.constant(0, tf.int64)])


def check_mask_values(mask):
    """A mask tensor after a graph assertion that every value is 0 or 1 (exported `complete` endpoints)."""
    ok = tf.reduce_all(tf.equal(mask, 0.0) | tf.equal(mask, 1.0))
    with tf.control_dependencies([tf.debugging.Assert(ok, ["mask values must be 0 (fill in) or 1 (known)"])]):
        return tf.identity(mask)


def _config_value(value):
    """Tuples (nested too) as lists: what a config holds after a JSON round trip."""
    if isinstance(value, (tuple, list)):
        return [_config_value(v) for v in value]
    return value


def _overflow_on_every_replica_if_on_one(grads):
    """Make every replica's gradients non-finite (NaN) when one replica's are; else leave them as they are.

    A `LossScaleOptimizer` skips a step whose float16 gradients overflowed, but under
    `tf.distribute` Keras 3.15 decides on each replica's *local* gradients, before they
    are summed across replicas: when one replica overflows and another does not, the
    other applies the sum, inf included, and the weights become inf/NaN (seen with
    two replicas at the initial loss scale). With the replicas agreeing, every one
    skips the step and halves the loss scale. One scalar all-reduce per step.
    """
    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync == 1:
        return grads
    present = [g.values if isinstance(g, tf.IndexedSlices) else g for g in grads if g is not None]
    finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in present])
    overflowed = ctx.all_reduce(tf.distribute.ReduceOp.SUM, 1.0 - tf.cast(finite, tf.float32))
    factor = tf.where(overflowed > 0, float("nan"), 1.0)

    def apply_factor(g):
        if g is None:
            return None
        if isinstance(g, tf.IndexedSlices):
            return tf.IndexedSlices(g.values * tf.cast(factor, g.values.dtype), g.indices, g.dense_shape)
        return g * tf.cast(factor, g.dtype)

    return [apply_factor(g) for g in grads]


def _multi_worker(strategy) -> bool:
    """A MultiWorkerMirroredStrategy over several workers (Keras' own test for its multi-worker paths)."""
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and strategy.extended._in_multi_worker_mode()


def check_pixel_range(images, owner="model"):
    """float32 `images` after checking that every pixel is in [0, 1].

    NaN and ±Inf pixels fail the check (every comparison with NaN is false), and
    so do 0-255 or [-1, 1] data, which would otherwise train silently on the
    wrong scale. Concrete tensors are checked now (ValueError); inside a
    `tf.function` (a training step) by one graph assertion: a comparison and
    three reductions per batch, nothing next to the network. (XLA drops assertions.)
    """
    in_range = tf.reduce_all((images >= 0.0) & (images <= 1.0))
    nans = tf.reduce_sum(tf.cast(tf.math.is_nan(images), tf.int32))
    if not tf.is_symbolic_tensor(images):
        if not bool(in_range):
            finite = tf.boolean_mask(images, tf.math.is_finite(images)).numpy()
            seen = f"values in [{finite.min():.4g}, {finite.max():.4g}]" if finite.size else "no finite values"
            infinite = int(tf.size(images)) - finite.size - int(nans)
            raise ValueError(f"{owner} expects pixels in [0, 1], got {seen}, {int(nans)} NaN and {infinite} "
                             f"infinite pixels: {_rescale_hint(finite)}")
        return images
    check = tf.debugging.Assert(in_range, [f"{owner} expects pixels in [0, 1]; got min, max, NaN count:",
                                           tf.reduce_min(images), tf.reduce_max(images), nans])
    with tf.control_dependencies([check]):
        return tf.identity(images)


def _rescale_hint(finite) -> str:
    """How to bring pixels seen in `finite` into [0, 1], for the error that refuses them."""
    if finite.size and finite.min() >= 0 and finite.max() <= 255:
        return ("0-255 pixels (keras.utils.image_dataset_from_directory gives those): divide by 255, e.g. "
                "ds.map(lambda x, y: (x / 255, y)), or read the folder with tfgen.data.load('folder:DIR', 'train', ...)")
    if finite.size and finite.min() >= -1 and finite.max() <= 1:
        return "[-1, 1] pixels: rescale with (x + 1) / 2"
    return "rescale them to [0, 1]"


def check_image_shape(shape, expected, owner="model"):
    got = tuple(shape[1:])
    if len(shape) != 4:
        raise ValueError(
            f"{owner} expects a batch of images of shape (batch, {', '.join(map(str, expected))}), "
            f"got a tensor of rank {len(shape)} with shape {tuple(shape)}"
        )
    if any(g is not None and g != e for g, e in zip(got, expected)):
        raise ValueError(f"{owner} expects images of shape {tuple(expected)}, got {got}")


def check_hyperparameters(cls, overrides: dict) -> None:
    known = sorted(cls.hyperparameters())
    for key in overrides:
        if key not in known:
            raise checks.unknown_name(key, known, "hyperparameter", owner=cls.registry_name or cls.__name__)
