import pytest


@pytest.fixture(scope="session")
def evaluator():
    """The cached bundled-digits evaluator (saved_models/evaluator-mnist_bundled; trained on first use)."""
    from tfgen.eval import get_evaluator

    return get_evaluator("mnist_bundled")
