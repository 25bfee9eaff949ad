"""A font for the words of the PNG figure when matplotlib's default font lacks their glyphs (CJK above all).

matplotlib draws text with DejaVu Sans, which has no Chinese, Japanese or Korean glyphs: the characters come out
as boxes. :func:`family_for` finds an installed font that has every character the words need (the usual CJK
families first, then any font matplotlib knows of or fontconfig lists) and returns a fallback family list
(default font first, so Latin text keeps its look). When none exists it prints one warning line saying the PNG
shows boxes and how to fix it; the HTML page and the terminal view show the characters whatever the fonts.
"""
from __future__ import annotations

import sys
import warnings
from functools import lru_cache
from typing import Iterable

#: families that cover CJK, tried first (Linux, macOS and Windows names)
CJK_FAMILIES = ("Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Sans CJK TC", "Noto Sans CJK KR", "Noto Sans SC",
                "Source Han Sans SC", "Source Han Sans CN", "WenQuanYi Zen Hei", "WenQuanYi Micro Hei",
                "Droid Sans Fallback", "AR PL UMing CN", "AR PL UKai CN", "Microsoft YaHei", "SimHei",
                "PingFang SC", "Hiragino Sans GB", "Heiti SC", "Noto Sans JP", "Noto Sans KR", "IPAexGothic",
                "IPAGothic", "TakaoGothic", "NanumGothic", "Arial Unicode MS")
#: fonts whose glyphs are placeholders, never a fix
PLACEHOLDERS = ("Last Resort",)
HOW_TO_FIX = "install a CJK font (e.g. apt-get install fonts-noto-cjk) and run again"


@lru_cache(maxsize=None)
def _charmap(path: str) -> frozenset:
    from matplotlib.ft2font import FT2Font

    try:
        return frozenset(FT2Font(path).get_charmap())
    except (OSError, RuntimeError, ValueError):
        return frozenset()


def _default_font() -> tuple[str, str]:
    """(family name, file) of the font matplotlib draws plain text with."""
    from matplotlib import font_manager as fm

    path = fm.findfont(fm.FontProperties(), fallback_to_default=True)
    return fm.get_font(path).family_name, path


def _candidates():
    """(name, file) of every font to try: matplotlib's list (known CJK families first), then fontconfig's files
    matplotlib has not indexed (a font installed after matplotlib built its cache)."""
    from matplotlib import font_manager as fm

    known = [(f.name, f.fname) for f in fm.fontManager.ttflist if not f.name.startswith(PLACEHOLDERS)]
    rank = {name: i for i, name in enumerate(CJK_FAMILIES)}
    known.sort(key=lambda nf: rank.get(nf[0], len(rank)))
    yield from known
    seen = {path for _, path in known}
    try:
        system = fm.findSystemFonts()
    except Exception:  # noqa: BLE001 - a broken fontconfig only means fewer candidates
        system = []
    for path in system:
        if path not in seen:
            yield None, path


def missing_characters(words: Iterable[str]) -> list[str]:
    """The characters of ``words`` the default font has no glyph for, in first-seen order."""
    _, path = _default_font()
    have = _charmap(path)
    out: dict[str, None] = {}
    for w in words:
        for c in str(w):
            if not c.isspace() and ord(c) not in have:
                out.setdefault(c)
    return list(out)


def family_for(words: Iterable[str]) -> list[str] | None:
    """A font family list drawing every character of ``words`` (None: the default font already does, or no
    installed font does; then one warning line on stderr)."""
    from matplotlib import font_manager as fm

    need = missing_characters(words)
    if not need:
        return None
    codes = {ord(c) for c in need}
    default, _ = _default_font()
    for name, path in _candidates():
        if codes <= _charmap(path):
            if name is None:                         # a file matplotlib did not know: register it
                fm.fontManager.addfont(path)
                name = fm.FontProperties(fname=path).get_name()
            return [default, name]
    sample = "".join(need[:8]) + ("…" if len(need) > 8 else "")
    print(f"probekit: warning: no installed font has glyphs for {sample} ({len(need)} characters): the PNG shows "
          f"boxes for them (the HTML page and the terminal view show the characters); {HOW_TO_FIX}",
          file=sys.stderr)
    warnings.filterwarnings("ignore", message=r"Glyph \d+ .* missing from font", category=UserWarning)
    return None
