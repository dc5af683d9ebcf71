from pathlib import Path

from setuptools import find_packages, setup

setup(
    name="tfgen",
    version="0.1.0",
    description="A Keras 3 / TensorFlow zoo of generative models: GAN, VAE, conditional, diffusion, autoregressive.",
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["tfgen", "tfgen.*"]),
    # The `tfgen` script's entry, outside the package so that `--help` does not import Keras (see it).
    py_modules=["tfgen_cli"],
    package_data={"tfgen.models": ["*.json"],  # each family's presets and fit defaults (tfgen.catalog)
                  "tfgen.data": ["mnist_bundled.npz", "BUNDLED_DATA.md"],
                  "tfgen.eval": ["evaluators/*/evaluator.keras", "evaluators/*/evaluator.json"],
                  # Trained presets (`tfgen.pretrained`): tfgen/pretrained/<dataset>/<family>/.
                  "tfgen.pretrained": ["*/*/config.json", "*/*/metadata.json", "*/*/model.weights.h5"]},
    install_requires=[
        "tensorflow>=2.16,<2.22",
        "keras>=3.15,<3.16",
        "tensorflow-datasets>=4.9.4,<4.10",
        # TensorFlow 2.21 no longer installs TensorBoard, which the TensorBoard callback needs.
        "tensorboard>=2.16",
        # TFDS 4.9.10 needs it on Python >= 3.9 to prepare data, but does not declare it.
        "importlib_resources>=6",
        "numpy>=1.26",
        "matplotlib>=3.8",
    ],
    extras_require={
        "dev": ["pytest>=8", "pytest-xdist>=3.5", "hypothesis>=6", "scipy>=1.11", "nbclient>=0.10", "nbformat>=5.10", "ipykernel>=6"],
    },
    entry_points={"console_scripts": ["tfgen=tfgen_cli:main"]},
)
