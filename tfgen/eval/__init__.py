"""Evaluation: an evaluator network per dataset, sample-quality metrics in its feature space, likelihood bounds.

    from tfgen.eval import get_evaluator, evaluate
    get_evaluator("mnist_bundled").predict_labels(images)
    evaluate(model, dataset="mnist_bundled", n=2000)   # -> dict of scores

Submodules load lazily so that `import tfgen.eval` does not import TensorFlow.
"""

_LAZY = {
    "Evaluator": "tfgen.eval.evaluator",
    "get_evaluator": "tfgen.eval.evaluator",
    "train_evaluator": "tfgen.eval.evaluator_training",
    "load_evaluator": "tfgen.eval.evaluator",
    "save_evaluator": "tfgen.eval.evaluator",
    "evaluate": "tfgen.eval.scoring",
    "sample_scores": "tfgen.eval.scoring",
    "reference_scores": "tfgen.eval.scoring",
    "format_table": "tfgen.eval.scoring",
    "InceptionFeatures": "tfgen.eval.inception",
    "vae_bounds": "tfgen.eval.likelihood",
    "importance_weighted_bound": "tfgen.eval.likelihood",
}

__all__ = list(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tfgen.eval' has no attribute {name!r}")
