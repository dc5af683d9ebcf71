"""What the command line needs to know about the model families, without importing TensorFlow.

`tfgen list`, `tfgen train --help` and argument errors (an unknown model or
preset, a `--set` key a model does not have) should answer at once, not after
the seconds TensorFlow takes to import. The facts they need (family names,
preset names, `FIT_DEFAULTS`, constructor defaults) are plain literals in each
model module, so this module reads them from the source with `ast` instead of
importing it.

Why read the source rather than keep a second, TF-free table per family:
adding a family stays "one module with a `@register_model("name")` line, and
one test file"; the module is the only place its presets are written, so the
command line can never disagree with the library (tests/test_catalog.py checks
that every value read here equals the imported class's). Should a family
ever compute its presets (a non-literal expression), `families()` falls back
to importing that module: slower, never wrong.
"""

from __future__ import annotations

import ast
import functools
import importlib
from dataclasses import dataclass, field
from pathlib import Path

from tfgen.checks import UnknownNameError, did_you_mean, unknown_name

_MODELS_DIR = Path(__file__).parent / "models"
_BASE_CLASS = "GenerativeModel"


@dataclass(frozen=True)
class Family:
    """A registered model family as the command line sees it."""

    name: str
    module: str  # e.g. "tfgen.models.vae"
    presets: dict = field(default_factory=dict)
    fit_defaults: dict = field(default_factory=dict)
    hyperparameters: dict = field(default_factory=dict)  # constructor argument -> default value
    conditional: bool = False  # the class's `conditional`: it needs class labels, whatever its hyperparameters
    halving_networks: bool = False  # its image sizes are those of `tfgen.layers.resolution`
    quality_monotone: bool = True  # False: `tfgen train` keeps the best epoch by default (`--keep best`)
    class_name: str = ""


class _NotLiteral(ValueError):
    """A class attribute the catalog cannot evaluate without running the module."""


def _literal(node):
    """`ast.literal_eval` extended to `dict(key=literal, ...)`, the way presets are written."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict" and not node.args:
        if any(k.arg is None for k in node.keywords):
            raise _NotLiteral("dict(**...)")
        return {k.arg: _literal(k.value) for k in node.keywords}
    if isinstance(node, ast.Dict):
        if None in node.keys:
            raise _NotLiteral("{**...}")
        return {_literal(k): _literal(v) for k, v in zip(node.keys, node.values)}
    if isinstance(node, (ast.Tuple, ast.List)):
        items = [_literal(e) for e in node.elts]
        return tuple(items) if isinstance(node, ast.Tuple) else items
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise _NotLiteral(ast.dump(node)) from None


@dataclass
class _ClassSource:
    module: str
    node: ast.ClassDef
    registered_as: str | None

    def attribute(self, name: str):
        for stmt in self.node.body:
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target] \
                if isinstance(stmt, ast.AnnAssign) and stmt.value is not None else []
            if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                return _literal(stmt.value)
        raise KeyError(name)

    def init_defaults(self) -> dict:
        init = next((s for s in self.node.body if isinstance(s, ast.FunctionDef) and s.name == "__init__"), None)
        if init is None:
            return {}
        args = init.args.args[1:]  # without self
        defaults = [None] * (len(args) - len(init.args.defaults)) + list(init.args.defaults)
        out = {a.arg: (_literal(d) if d is not None else None) for a, d in zip(args, defaults)}
        out.update({a.arg: _literal(d) for a, d in zip(init.args.kwonlyargs, init.args.kw_defaults) if d is not None})
        return out

    def bases(self) -> list[str]:
        return [b.id for b in self.node.bases if isinstance(b, ast.Name)]


def _registered_name(node: ast.ClassDef) -> str | None:
    for deco in node.decorator_list:
        if (isinstance(deco, ast.Call) and isinstance(deco.func, ast.Name) and deco.func.id == "register_model"
                and deco.args and isinstance(deco.args[0], ast.Constant)):
            return deco.args[0].value
    return None


def _class_sources() -> dict[str, _ClassSource]:
    classes = {}
    for path in sorted(_MODELS_DIR.glob("*.py")):
        module = f"tfgen.models.{path.stem}"
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ClassDef):
                classes[node.name] = _ClassSource(module, node, _registered_name(node))
    return classes


def _lineage(cls: _ClassSource, classes: dict) -> list[_ClassSource]:
    """`cls` and its base classes defined in tfgen/models, nearest first, in Python's method
    resolution order: every base, each once, a shared base after all that derive from it
    (`LatentDiffusion(LatentMixin, Diffusion)`: LatentMixin, Diffusion, GenerativeModel).

    A depth-first walk, left base first, keeping each class's last visit: Python's C3 order
    for the hierarchies here (classes outside tfgen/models are not followed).
    """
    visits = []

    def visit(klass):
        visits.append(klass)
        if klass.node.name != _BASE_CLASS:
            for base in klass.bases():
                if base in classes:
                    visit(classes[base])

    visit(cls)
    return [k for i, k in enumerate(visits) if all(later is not k for later in visits[i + 1:])]


def _inherited(chain, name):
    for klass in chain:
        try:
            return klass.attribute(name)
        except KeyError:
            continue
    raise _NotLiteral(f"no {name} in {chain[0].node.name} or its bases")


def _family_from_source(cls: _ClassSource, classes: dict) -> Family:
    chain = _lineage(cls, classes)
    hyper = {}
    for klass in reversed(chain):  # nearest class last, so its defaults win
        hyper.update(klass.init_defaults())
    flags = {}
    for name, unset in (("conditional", False), ("halving_networks", False), ("quality_monotone", True)):
        try:
            flags[name] = _inherited(chain, name) is True
        except _NotLiteral:  # set per instance (`conditional` from a hyperparameter), not by the class
            flags[name] = unset
    return Family(cls.registered_as, cls.module, presets=cls.attribute("PRESETS"),
                  fit_defaults=_inherited(chain, "FIT_DEFAULTS"), hyperparameters=hyper, class_name=cls.node.name,
                  **flags)


def _family_from_import(name: str, module: str) -> Family:
    importlib.import_module(module)  # the slow path: imports TensorFlow
    from tfgen.registry import get_model_class

    model_cls = get_model_class(name)
    return Family(name, module, presets=dict(model_cls.PRESETS), fit_defaults=dict(model_cls.FIT_DEFAULTS),
                  hyperparameters={k: p.default for k, p in model_cls.hyperparameters().items()},
                  conditional=getattr(model_cls, "conditional", False) is True,
                  halving_networks=getattr(model_cls, "halving_networks", False) is True,
                  quality_monotone=getattr(model_cls, "quality_monotone", True) is True, class_name=model_cls.__name__)


@functools.cache
def families() -> dict[str, Family]:
    """Every registered family by name (sorted), read from the model modules' source."""
    classes = _class_sources()
    out = {}
    for cls in classes.values():
        if cls.registered_as is None:
            continue
        try:
            out[cls.registered_as] = _family_from_source(cls, classes)
        except _NotLiteral:
            out[cls.registered_as] = _family_from_import(cls.registered_as, cls.module)
    return dict(sorted(out.items()))


def family(name: str) -> Family:
    """The family called `name`; an `UnknownNameError` suggesting the nearest name otherwise."""
    found = families()
    if name not in found:
        raise unknown_name(name, found, "model")
    return found[name]


def check_preset(name: str, preset: str) -> str:
    """`preset` if family `name` has it; an `UnknownNameError` suggesting the nearest preset otherwise."""
    presets = list(family(name).presets)
    if preset not in presets:
        raise UnknownNameError(f"unknown preset {preset!r} for {name!r}{did_you_mean(preset, presets)}; "
                               f"choose from {', '.join(presets)}")
    return preset
