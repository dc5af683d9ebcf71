"""tfgen.catalog reads what the command line needs from the families' data files: it must agree
with the imported classes, family by family, or `tfgen list` and `--set` checks would lie."""

import pytest

import tfgen
from tfgen import catalog
from tfgen.checks import UnknownNameError


def test_catalog_lists_every_registered_family():
    assert list(catalog.families()) == list(tfgen.list_models())


@pytest.mark.parametrize("name", sorted(tfgen.list_models()))
def test_catalog_reads_the_same_presets_fit_defaults_and_hyperparameters_as_the_class(name):
    family, cls = catalog.families()[name], tfgen.get_model_class(name)
    assert family.presets == cls.PRESETS and family.preset_aliases == cls.PRESET_ALIASES
    assert family.fit_defaults == cls.FIT_DEFAULTS and family.auto_bfloat16 == cls.AUTO_BFLOAT16
    # The constructor owns its defaults; the data file's copy (for `--set` checks) must match it exactly.
    expected = {key: p.default for key, p in cls.hyperparameters().items()}
    assert family.hyperparameters == expected, f"update 'hyperparameters' in {family.module.replace('.', '/')}.json"
    assert (family.module, family.class_name) == (cls.__module__, cls.__name__)
    assert (family.requires_labels, family.halving_networks, family.quality_monotone) == (
        cls.requires_labels, cls.halving_networks, cls.quality_monotone)


def test_unknown_names_suggest_the_nearest():
    with pytest.raises(UnknownNameError, match=r"unknown model 'vea' \(did you mean 'vae'\?\); choose from cgan"):
        catalog.family("vea")
    with pytest.raises(UnknownNameError, match=r"unknown preset 'tinny' for 'gan' \(did you mean 'tiny'\?\)"):
        catalog.check_preset("gan", "tinny")
    assert catalog.check_preset("gan", "tiny") == "tiny"


def test_a_malformed_data_file_is_one_line_naming_the_file(tmp_path):
    path = tmp_path / "toy.json"
    path.write_text('{"name": "toy", "class": "Toy", "presets": {"tiny": {}}, "fit_defaults": {}}')
    with pytest.raises(ValueError, match=r"toy\.json: missing hyperparameters$"):
        catalog.read_family(path)
    path.write_text('{"name": "toy", "class": "Toy", "presets": {"tiny": {}}, "fit_defaults": {}, '
                    '"hyperparameters": {}, "preset": {}}')
    with pytest.raises(ValueError, match=r"toy\.json: unknown preset$"):
        catalog.read_family(path)
    path.write_text('{"name": "toy",')
    with pytest.raises(ValueError, match=r"toy\.json: not a readable family data file"):
        catalog.read_family(path)


def test_json_arrays_are_read_as_tuples_as_the_presets_were_written():
    assert catalog.family("vae").presets["tiny"]["encoder_filters"] == (4, 8)
    assert catalog.family("vae").hyperparameters["image_shape"] == (28, 28, 1)


def test_the_default_batch_follows_the_image_size_only_where_the_family_caps_it():
    transformer, vae = catalog.family("pixel_transformer").fit_defaults, catalog.family("vae").fit_defaults
    assert catalog.default_batch_size(transformer, (28, 28, 1)) == 64  # the digits' batch, unchanged
    assert catalog.default_batch_size(transformer, (32, 32, 3)) == 16  # 64 × 784 // 3,072
    assert catalog.default_batch_size(transformer, (512, 512, 3)) == 1
    assert catalog.default_batch_size(vae, (64, 64, 3)) == vae["batch_size"]


def test_register_model_refuses_a_name_or_class_its_data_file_does_not_describe():
    from tfgen.models.vae import VAE
    from tfgen.registry import register_model

    with pytest.raises(ValueError, match=r"vae\.json describes VAE as 'vae', not VAE as 'vea'"):
        register_model("vea")(VAE)
