"""The head browser's CSS and JavaScript, read once from the real files in ``assets/``.

The script reads its data from the ``pk-data`` JSON block, inserts every string with ``textContent`` and draws
on one viewport-sized canvas. ``window.probekitView`` exposes what was drawn (for tests and for scripting).
"""
from __future__ import annotations

from importlib import resources

_FOLDER = resources.files("probekit.viz") / "assets"

CSS = (_FOLDER / "browser.css").read_text(encoding="utf-8")
JS = (_FOLDER / "browser.js").read_text(encoding="utf-8")
