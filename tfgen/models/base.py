"""Scaffolding shared by every tfgen model.

A tfgen model is a `keras.Model` subclass with a custom `train_step`, trained
with `model.fit` on batches of `(images, labels)` in [0, 1], NHWC, float32.
This module holds what every family needs and nothing family-specific:

* presets (`from_preset`) with hyperparameter validation and `get_config`;
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
import tensorflow as tf

from tfgen.registry import UnknownNameError


class GenerativeModel(keras.Model):
    """Base class: subclasses define `PRESETS`, `train_step`, `sample` and `get_config`."""

    PRESETS: dict[str, dict] = {}
    #: Conditional models receive labels in every step and in `sample`.
    conditional = False
    #: Set by `@register_model`.
    registry_name = None

    def __init__(self, image_shape=(28, 28, 1), num_classes=10, seed=None, **kwargs):
        super().__init__(**kwargs)
        image_shape = tuple(int(d) for d in image_shape)
        if len(image_shape) != 3 or min(image_shape) <= 0:
            raise ValueError(f"image_shape must be (height, width, channels) of positive ints, got {image_shape}")
        check_positive(num_classes=num_classes)
        self.image_shape = image_shape
        self.num_classes = int(num_classes)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self._trackers: dict[str, keras.metrics.Mean] = {}
        # Subclasses build every sub-network in __init__ as a functional model, so
        # all variables exist from construction: nothing is left for `build`.
        self.built = True

    # ------------------------------------------------------------------ presets / config
    @classmethod
    def from_preset(cls, preset: str = "default", **overrides):
        """Build from a named preset; keyword arguments override its hyperparameters."""
        if preset not in cls.PRESETS:
            raise UnknownNameError(
                f"unknown preset {preset!r} for {cls.registry_name!r}; presets: {', '.join(cls.PRESETS)}"
            )
        check_hyperparameters(cls, overrides)
        return cls(**{**cls.PRESETS[preset], **overrides})

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
        return {
            **super().get_config(),
            "image_shape": list(self.image_shape),
            "num_classes": self.num_classes,
            "seed": self.seed,
        }

    # ------------------------------------------------------------------ batches
    def unpack(self, data):
        """Split a batch into (images, labels) and check the image shape.

        Shapes are checked on the static shape, so a wrong dataset fails when
        `fit` traces the step, before any training, with a message that says
        what the model expected.
        """
        if isinstance(data, (tuple, list)):
            images, labels = data[0], (data[1] if len(data) > 1 else None)
        elif isinstance(data, dict):
            images, labels = data["images"], data.get("labels")
        else:
            images, labels = data, None
        check_image_shape(images.shape, self.image_shape, type(self).__name__)
        if self.conditional and labels is None:
            raise ValueError(f"{type(self).__name__} is conditional: batches must be (images, labels), got images only")
        # Loss maths stays in float32 under mixed precision; layers cast their own inputs.
        images = tf.cast(images, "float32")
        if labels is not None:
            labels = tf.cast(tf.reshape(labels, [-1]), tf.int32)
        return images, labels

    # ------------------------------------------------------------------ metrics
    def track(self, values: dict) -> dict:
        """Update one `Mean` tracker per named value; return all current results."""
        for name, value in values.items():
            if name not in self._trackers:
                raise KeyError(f"no tracker {name!r}; declare it in __init__ with declare_metrics")
            self._trackers[name].update_state(value)
        return {name: t.result() for name, t in self._trackers.items()}

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
        optimizer.apply(grads, variables)

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

    def uniform_labels(self, n, seed=None):
        return tf.random.stateless_uniform([n], seed=self.draw_seed(seed), maxval=self.num_classes, dtype=tf.int32)

    # ------------------------------------------------------------------ generation
    def sample(self, n: int, labels=None, seed=None):
        """Draw `n` images in [0, 1], NHWC float32."""
        raise NotImplementedError

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


def check_positive(**values):
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise ValueError(f"{name} must be a positive number, got {value!r}")


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
    known = cls.hyperparameters()
    for key in overrides:
        if key not in known:
            raise UnknownNameError(
                f"{cls.__name__} has no hyperparameter {key!r}; known: {', '.join(sorted(known))}"
            )
