"""Likelihood metrics: the VAE's ELBO and importance-weighted bound, and exact autoregressive NLL.

For a VAE with posterior q(z | x), prior p(z) and decoder p(x | z):

    ELBO(x)   = E_q[log p(x | z)] − KL(q(z | x) ‖ p(z))                     ≤ log p(x)
    IWAE_k(x) = E[log (1/k) Σ_i p(x | z_i) p(z_i) / q(z_i | x)],  z_i ~ q   ≤ log p(x)

IWAE_1 = ELBO, IWAE_k rises with k and tends to log p(x) as k → ∞ (Burda,
Grosse & Salakhutdinov 2016, "Importance Weighted Autoencoders", Theorem 1).
The ELBO is estimated with the analytic KL and the k reconstruction terms
averaged (lower variance than a one-sample estimate); IWAE_k with a running
log-sum-exp over chunks of samples, so k = 5000 never holds more than
`max_decodes` decoded images at once.

Numbers are nats per image (negated bounds: `elbo_nats` = −ELBO, an upper
bound on −log p(x); lower is better) and bits per dimension
(nats / (H·W·C · ln 2)).

Data variants (stated with every number, because they are not comparable):

* `continuous (Bernoulli cross-entropy on grayscale)` — the VAE's training
  objective on the [0, 1] grayscale pixels. A Bernoulli "likelihood" of a
  non-binary x is not a normalised density, so this is a training loss, not a
  log-likelihood comparable with other models.
* `binarised (threshold 0.5)` — the test images thresholded at 0.5, where the
  Bernoulli decoder is a real distribution: a real log-likelihood, but of
  cleaner data than the literature's (next).
* stochastically binarised (`STOCHASTIC`) — each test pixel drawn once as
  x ~ Bernoulli(pixel) with a fixed seed: the kind of data the binarised-MNIST
  literature reports on (Salakhutdinov & Murray 2008 drew MNIST this way once;
  Larochelle & Murray 2011 fixed that draw as the standard benchmark, on which
  PixelCNN reaches 81.3 nats: van den Oord et al. 2016, "Pixel Recurrent Neural
  Networks"). Thresholded digits have crisp edges and score far lower NLLs than
  noisy Bernoulli draws of the same digits, so only this variant is comparable
  with published numbers — still on our test images, not the standard draw of
  the 10,000 MNIST test digits.
"""

from __future__ import annotations

import math

import numpy as np

from tfgen.checks import one_of, positive_int

CONTINUOUS = "continuous (Bernoulli cross-entropy on grayscale)"
BINARISED = "binarised (threshold 0.5)"
STOCHASTIC = "stochastically binarised: one fixed draw x ~ Bernoulli(pixel) per test image (seed {seed})"


def binarize(images, threshold: float = 0.5):
    """Images in [0, 1] → {0, 1} float32 (pixel > threshold)."""
    return (np.asarray(images, np.float32) > threshold).astype(np.float32)


def stochastic_binarize(images, seed: int = 0):
    """Images in [0, 1] → {0, 1} float32, each pixel an independent Bernoulli(pixel) draw (seeded: the
    same test set every time, as the fixed binarised-MNIST benchmark is one draw)."""
    images = np.asarray(images, np.float32)
    if images.size and (images.min() < 0.0 or images.max() > 1.0):
        raise ValueError(f"stochastic binarisation needs pixels in [0, 1], got [{images.min()}, {images.max()}]")
    return (np.random.default_rng(seed).random(images.shape, dtype=np.float32) < images).astype(np.float32)


def bits_per_dim(nats_per_image, image_shape):
    """Nats per image -> bits per dimension, nats / (D · ln 2), with D the values in an image of `image_shape`
    ((H, W, C), or D itself). A number or a tensor of nats gives the same kind back (models log it per step)."""
    return nats_per_image / (int(np.prod(image_shape)) * math.log(2.0))


def is_vae(model) -> bool:
    return all(hasattr(model, a) for a in ("encode", "decode_logits", "latent_dim"))


def has_log_prob(model) -> bool:
    return callable(getattr(model, "log_prob", None))


def importance_weighted_bound(model, images, labels=None, ks=(1, 50), seed=0, max_decodes=4096):
    """Per-image ELBO and IWAE_k lower bounds on log p(x) (nats, higher is better).

    images: (N, H, W, C) targets in [0, 1] (binarise them first for the binarised variant).
    labels: class labels for conditional VAEs (bounds on log p(x | y)); else None.
    ks: the numbers of importance samples; all bounds share the first max(ks) draws,
        so IWAE_k for the different k use nested samples (as in Burda et al.'s table).
    max_decodes: at most this many images are decoded at once (memory bound).

    Returns {"elbo": (N,), "iwae": {k: (N,)}} as float64 NumPy arrays.
    """
    import tensorflow as tf

    from tfgen import losses

    ks = sorted({positive_int(k, "each of ks") for k in ks})
    if not ks:
        raise ValueError("ks must hold at least one number of importance samples, got none")
    images = np.asarray(images, np.float32)
    n = len(images)
    # A batch of images × a chunk of samples: at most max_decodes decodes per call.
    chunk = max(1, min(ks[-1], max_decodes))
    batch = max(1, max_decodes // chunk)
    log_weights = _log_weights_function(model)
    elbo = np.empty(n)
    iwae = {k: np.empty(n) for k in ks}
    for start in range(0, n, batch):
        x = tf.constant(images[start:start + batch])
        y = None if labels is None else tf.constant(np.asarray(labels[start:start + batch], np.int32))
        z_mean, z_log_var = model.encode(x, y)
        z_mean, z_log_var = tf.cast(z_mean, tf.float32), tf.cast(z_log_var, tf.float32)
        kl = losses.gaussian_kl(z_mean, z_log_var).numpy()
        recon, bounds = _batch_bounds(lambda eps: log_weights(x, y, z_mean, z_log_var, eps), z_mean.shape,
                                      ks, chunk, seed=(int(seed), start * 1_000_003))
        elbo[start:start + len(x)] = recon - kl
        for k, bound in bounds.items():
            iwae[k][start:start + len(x)] = bound
    return {"elbo": elbo, "iwae": iwae}


def _log_weights_function(model):
    """A compiled f(x, y, z_mean, z_log_var, eps) → log p(x|z), log p(z) − log q(z|x), both (B, c)."""
    import tensorflow as tf

    from tfgen import losses

    @tf.function(reduce_retracing=True)
    def log_weights(x, y, z_mean, z_log_var, eps):
        # x: (B, H, W, C); eps: (B, c, L): c samples of z per image.
        b, c = tf.shape(eps)[0], tf.shape(eps)[1]
        std = tf.exp(0.5 * z_log_var)[:, None, :]
        z = z_mean[:, None, :] + std * eps
        flat_z = tf.reshape(z, [b * c, -1])
        flat_y = None if y is None else tf.repeat(y, c)
        logits = model.decode_logits(flat_z, flat_y)
        flat_x = tf.repeat(x, c, axis=0)
        log_px = -tf.reshape(losses.bernoulli_nll(flat_x, logits), [b, c])
        log_pz = losses.gaussian_log_prob(z)
        log_qz = losses.gaussian_log_prob(z, z_mean[:, None, :], z_log_var[:, None, :])
        return log_px, log_pz - log_qz

    return log_weights


def _batch_bounds(log_weights, latent_shape, ks, chunk: int, seed: tuple):
    """For one batch of images: the mean reconstruction term over max(ks) samples, and IWAE_k for each k.

    log_weights(eps) → (log p(x|z), log p(z) − log q(z|x)) for noise eps of shape (B, c, L);
    seed: (a, b): the chunk that starts at sample `done` draws its noise with the stateless seed (a, b + done).
    """
    import tensorflow as tf

    k_max, (b, latent) = ks[-1], latent_shape
    recon_sum, bounds = np.zeros(b), {}
    running = np.full(b, -np.inf)  # running log-sum-exp of the log weights over samples 1..k
    done = 0
    while done < k_max:
        c = min(chunk, k_max - done)
        eps = tf.random.stateless_normal([b, c, latent], seed=tf.constant([seed[0], seed[1] + done], tf.int64))
        log_px, log_ratio = log_weights(eps)
        log_w = (log_px + log_ratio).numpy().astype(np.float64)
        log_px = log_px.numpy().astype(np.float64)
        # Split the chunk wherever a requested k falls inside it.
        pos = 0
        for k in [k for k in ks if done < k <= done + c] + [done + c]:
            part = slice(pos, k - done)
            if part.stop > part.start:
                running = np.logaddexp(running, _logsumexp(log_w[:, part]))
                recon_sum += log_px[:, part].sum(axis=1)
            pos = k - done
            if k in ks:
                bounds[k] = running - math.log(k)
        done += c
    return recon_sum / k_max, bounds


def _logsumexp(a):
    m = np.max(a, axis=1)
    return m + np.log(np.sum(np.exp(a - m[:, None]), axis=1))


def vae_bounds(model, images, labels=None, ks=(1, 50), variants=(CONTINUOUS, BINARISED), seed=0,
               max_decodes=4096) -> list[dict]:
    """Test-set bounds of a VAE/cVAE, one dict per data variant.

    Each dict: variant, n_images, elbo_nats (−ELBO, mean), iwae_nats {k: −IWAE_k},
    the corresponding bits per dim, and standard errors of the means.
    """
    images = np.asarray(images, np.float32)
    labels = labels if model.requires_labels else None
    out = []
    for variant in variants:
        targets = images if one_of(variant, (CONTINUOUS, BINARISED), "data variant") == CONTINUOUS else binarize(images)
        bounds = importance_weighted_bound(model, targets, labels, ks=ks, seed=seed, max_decodes=max_decodes)
        shape = images.shape[1:]
        row = {
            "variant": variant,
            "n_images": len(images),
            "elbo_nats": float(-bounds["elbo"].mean()),
            "elbo_nats_se": _se(bounds["elbo"]),
            "iwae_nats": {str(k): float(-v.mean()) for k, v in bounds["iwae"].items()},
            "iwae_nats_se": {str(k): _se(v) for k, v in bounds["iwae"].items()},
        }
        row["elbo_bits_per_dim"] = bits_per_dim(row["elbo_nats"], shape)
        row["iwae_bits_per_dim"] = {k: bits_per_dim(v, shape) for k, v in row["iwae_nats"].items()}
        out.append(row)
    return out


def exact_nll(model, images, labels=None, batch_size=256, stochastic_seed=None) -> dict:
    """Mean −log p(x) of a model with an exact `log_prob(images, labels=None)` (nats per image).

    The model receives test images in [0, 1] as `tfgen.data` yields them and applies
    its own data variant (quantisation, binarisation) inside `log_prob`; its
    `data_variant` attribute names that variant.

    stochastic_seed: if given, the images are first binarised stochastically with this
    seed (`stochastic_binarize`; only for models of binary pixels, `levels == 2`), and
    the row's variant says so: the numbers comparable with the binarised-MNIST literature.
    """
    images = np.asarray(images, np.float32)
    variant = str(getattr(model, "data_variant", "unspecified"))
    if stochastic_seed is not None:
        if getattr(model, "levels", None) != 2:
            raise ValueError("a stochastically binarised likelihood needs a model of binary pixels (levels=2), "
                             f"got levels={getattr(model, 'levels', None)}")
        images = stochastic_binarize(images, stochastic_seed)
        variant = STOCHASTIC.format(seed=stochastic_seed)
    use_labels = labels is not None and model.requires_labels
    values = []
    for start in range(0, len(images), batch_size):
        x = images[start:start + batch_size]
        kwargs = {"labels": np.asarray(labels[start:start + batch_size], np.int32)} if use_labels else {}
        values.append(np.asarray(model.log_prob(x, **kwargs), np.float64).reshape(-1))
    log_p = np.concatenate(values)
    nll = float(-log_p.mean())
    return {
        "variant": variant,
        "n_images": len(images),
        "nll_nats": nll,
        "nll_nats_se": _se(log_p),
        "bits_per_dim": bits_per_dim(nll, images.shape[1:]),
    }


def _se(values) -> float:
    values = np.asarray(values, np.float64)
    return float(values.std(ddof=1) / math.sqrt(len(values))) if len(values) > 1 else float("nan")
