"""probekit: probe BERT-family encoders and analyse their attention.

One forward pass through a Hugging Face encoder gives per-layer hidden states and per-head attention,
aligned from sub-tokens to words; probes, confusion scores and attention analyses build on that::

    import probekit as pk
    result = pk.probe(task="nth_token", n=[1, 2, 3], quiet=True)   # every command is a function
    result.frame                                                    # the tidy table the command writes
    result.write("runs/nth")                                        # exactly what the command writes

Names are imported on first use, so ``import probekit`` stays fast.
"""
from __future__ import annotations

import importlib
import sys
import types
import warnings

__version__ = "0.1.0"

# In Jupyter without ipywidgets, transformers' import of tqdm.auto warns "IProgress not found"; probekit's bars
# fall back to text bars by themselves (probekit.core.progress), so that warning says nothing useful.
warnings.filterwarnings("ignore", message="IProgress not found")

#: public name → module that defines it (imported lazily)
_NAMES = {
    # one function per command: pk.X(**options) → Result (.frame, extra tables, .write(out))
    "probe": "probekit.probing.probe",
    "data": "probekit.probing.data",
    "extract": "probekit.probing.extract",
    "confusion": "probekit.heads.confusion",
    "attention": "probekit.heads.attention",
    "deps": "probekit.syntax.deps",
    "coref": "probekit.syntax.coref",
    "parse": "probekit.syntax.parse",
    "browse": "probekit.viz.browse",
    "classify": "probekit.classifiers.classify",
    "attribute": "probekit.attribution.attribute",
    "structural": "probekit.probing.structural",
    "clusters": "probekit.probing.clusters",
    "edges": "probekit.probing.edges",
    "faithfulness": "probekit.evaluation.faithfulness",
    "compare": "probekit.finetuned.compare",
    "attack": "probekit.attacks.attack",
    # building blocks
    "load_encoder": "probekit.core.encoder",
    "Encoder": "probekit.core.encoder",
    "Example": "probekit.core.examples",
    "Activations": "probekit.core.extraction",
    "LayerAttention": "probekit.core.extraction",
    "extract_activations": "probekit.core.analysis",
    "analyze": "probekit.core.analysis",
    "Analysis": "probekit.core.analysis",
    "get_activations": "probekit.core.cache",
    "ActivationStore": "probekit.core.cache",
    "UserError": "probekit.core.errors",
    "quiet": "probekit.core.progress",
    "Result": "probekit.core.result",
    # readers
    "read_conllu": "probekit.corpora.conllu",
    "read_text": "probekit.corpora.text",
    "read_sentences": "probekit.corpora.sentences",
    "read_documents": "probekit.corpora.documents",
    "read_gap": "probekit.corpora.gap",
    "read_items": "probekit.corpora.conditions",
    "Grammar": "probekit.corpora.grammar",
    "generate_treebank": "probekit.corpora.grammar",
    # analyses that share one pass (update(activations, example) / result())
    "AttentionStats": "probekit.heads.statistics",
    "DependencyHeads": "probekit.syntax.dependency_heads",
    "CorefHeads": "probekit.syntax.coref_heads",
    "ConfusionScores": "probekit.heads.confusion",
    # probing tasks
    "tasks": "probekit.probing.registry",
    "get_task": "probekit.probing.registry",
    "register_task": "probekit.probing.registry",
    "Task": "probekit.probing.registry",
    "ProbingData": "probekit.probing.registry",
    # classifiers and attributions
    "load_classifier": "probekit.classifiers.saved",
    "HFClassifier": "probekit.classifiers.hf_model",
    "ProbabilisticClassifier": "probekit.classifiers.protocol",
    "export_hf": "probekit.classifiers.hf_export",
    "save_classifier": "probekit.classifiers.saved",
    "encoder_sources": "probekit.classifiers.verify",
    "render_html": "probekit.attribution.render",
    "explain": "probekit.attribution.explain",
    "Attributions": "probekit.attribution.attributions",
    "AttributionMethod": "probekit.attribution.base",
    "register_method": "probekit.attribution.registry",
    "list_methods": "probekit.attribution.registry",
    "load_plugin": "probekit.core.plugins",
    "render_ansi": "probekit.attribution.render",
    # multiple choice, faithfulness and comparison building blocks
    "MCItem": "probekit.corpora.multiple_choice",
    "read_mc": "probekit.corpora.multiple_choice",
    "Experiment": "probekit.evaluation.experiment",
    "register_experiment": "probekit.evaluation.experiments",
    "list_experiments": "probekit.evaluation.experiments",
    "Attack": "probekit.attacks.base",
    "register_attack": "probekit.attacks.base",
    "list_attacks": "probekit.attacks.catalogue",
    "Probe": "probekit.probing.base",
    "SelectionProbeBase": "probekit.probing.base",
    "register_probe": "probekit.probing.base",
    "list_probes": "probekit.probing.kinds",
    "tvd": "probekit.evaluation.metrics",
    "jsd": "probekit.evaluation.metrics",
    "linear_cka": "probekit.finetuned.cka",
}

__all__ = sorted(_NAMES)

#: the command modules (``python -m probekit.probe``) share their names with the facade functions
_COMMANDS = ("probe", "data", "extract", "confusion", "attention", "deps", "coref", "parse", "browse", "classify",
             "attribute", "structural", "clusters", "edges", "faithfulness", "compare", "attack")


def __getattr__(name: str):
    module = _NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'probekit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The public names (and the module's own dunders), not the helpers this file imports."""
    return sorted(set(__all__) | {n for n in globals() if n.startswith("__")})


class _Facade(types.ModuleType):
    """Keeps ``pk.probe`` the function when the command module ``probekit.probe`` is imported.

    Importing a submodule sets it as an attribute of its package; for the command modules that would replace
    the function of the same name. The module itself stays reachable in ``sys.modules`` (and through
    ``from probekit.probe import main``).
    """

    def __setattr__(self, name, value):
        if name in _COMMANDS and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Facade
