"""tfgen.catalog reads what the command line needs from the model modules' source: it must agree
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
    assert family.presets == cls.PRESETS
    assert family.fit_defaults == cls.FIT_DEFAULTS
    expected = {key: p.default for key, p in cls.hyperparameters().items() if p.default is not p.empty}
    assert {key: family.hyperparameters[key] for key in expected} == expected
    assert family.module == cls.__module__


def test_unknown_names_suggest_the_nearest():
    with pytest.raises(UnknownNameError, match=r"unknown model 'vea' \(did you mean 'vae'\?\); choose from cgan"):
        catalog.family("vea")
    with pytest.raises(UnknownNameError, match=r"unknown preset 'tinny' for 'gan' \(did you mean 'tiny'\?\)"):
        catalog.check_preset("gan", "tinny")
    assert catalog.check_preset("gan", "tiny") == "tiny"


def test_a_computed_preset_falls_back_to_importing_the_module(monkeypatch):
    """A preset the source reader cannot evaluate is read from the imported class instead."""
    import ast

    real = catalog._literal

    def refuse_vae_tuple(node):
        if isinstance(node, ast.Tuple) and [getattr(e, "value", None) for e in node.elts] == [4, 8]:
            raise catalog._NotLiteral("pretend (4, 8) were computed")
        return real(node)

    monkeypatch.setattr(catalog, "_literal", refuse_vae_tuple)
    catalog.families.cache_clear()
    try:
        assert catalog.families()["vae"].presets == tfgen.get_model_class("vae").PRESETS
    finally:
        catalog.families.cache_clear()
