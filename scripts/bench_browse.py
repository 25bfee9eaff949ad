"""Head-browser page size and write time at 128 and 512 tokens, next to bertviz's head_view.

    python scripts/bench_browse.py [--tokens 128 512] [--model PATH] [--browser] [--json out.json]

The input is running text from ../shared/data/ud-english-ewt/en_ewt-ud-dev.conllu when present (else a
built-in paragraph, repeated), cut to exactly N tokens including [CLS]/[SEP]. "write" for probekit is
render_head_view + writing the file; for bertviz it is head_view(..., html_action="return") building the
HTML string (not written to disk; its length in characters is the page size, the page being ASCII).
With --browser, the probekit page is also opened in headless Chromium: time to load and draw the first view.
"""
from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

EWT = ROOT.parent / "shared" / "data" / "ud-english-ewt" / "en_ewt-ud-dev.conllu"
PARAGRAPH = ("The committee met on Tuesday to discuss the new budget, which had been delayed for months. "
             "Several members argued that the proposal was unrealistic, while others praised its ambition. "
             "In the end, they agreed to postpone the vote until the auditors had reviewed the figures. ")


def source_text(max_chars: int = 20000) -> tuple[str, str]:
    if EWT.is_file():
        words, out = [], []
        for line in EWT.read_text(encoding="utf-8").splitlines():
            cols = line.split("\t")
            if len(cols) > 1 and cols[0].isdigit():
                words.append(cols[1])
            elif not line.strip() and words:
                out.append(" ".join(words))
                words = []
            if sum(len(s) for s in out) > max_chars:
                break
        return " ".join(out), str(EWT)
    return PARAGRAPH * (max_chars // len(PARAGRAPH) + 1), "built-in paragraph"


def text_of_n_tokens(tokenizer, text: str, n: int) -> str:
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    for cut in range(n - 2, n - 40, -1):  # decoding may re-tokenise slightly differently: search downwards
        t = tokenizer.decode(ids[:cut])
        if len(tokenizer(t)["input_ids"]) == n:
            return t
    raise RuntimeError(f"could not cut the text to {n} tokens")


def browser_load_seconds(path: Path) -> dict:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={tempfile.mkdtemp(prefix='pk-bench-')}", "--window-size=1200,900"):
        opts.add_argument(flag)
    d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    try:
        d.set_script_timeout(120)
        t = time.perf_counter()
        d.get(path.as_uri())
        d.execute_async_script("requestAnimationFrame(() => requestAnimationFrame(arguments[arguments.length-1]))")
        load = time.perf_counter() - t
        switch = d.execute_async_script(
            "const done = arguments[arguments.length-1], s = document.getElementById('pk-head');"
            "const t = performance.now(); s.value = '0'; s.dispatchEvent(new Event('change'));"
            "requestAnimationFrame(() => requestAnimationFrame(() => done(performance.now() - t)));")
        drawn = d.execute_script("return window.probekitView.drawn")
        return {"browser_load_s": round(load, 2), "browser_switch_head_s": round(switch / 1000, 3),
                "lines_drawn": drawn}
    finally:
        d.quit()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, nargs="+", default=[128, 512])
    ap.add_argument("--model", default=None)
    ap.add_argument("--no-bertviz", action="store_true")
    ap.add_argument("--browser", action="store_true", help="also time loading the page in headless Chromium")
    ap.add_argument("--json", help="write the figures here as JSON")
    args = ap.parse_args(argv)

    from probekit.viz.head_view import HeadMap, render_head_view, write_page
    from probekit.cli import set_quiet
    from probekit.core.encoder import load_encoder
    from probekit.core.examples import Example
    from probekit.core.extraction import extract

    set_quiet(True)
    enc = load_encoder(args.model, attention=True)
    text, origin = source_text()
    rows = []
    out_dir = Path(tempfile.mkdtemp(prefix="pk-bench-browse-"))
    for n in args.tokens:
        t_n = text_of_n_tokens(enc.tokenizer, text, n)
        ex = [Example(words=None, text=t_n)]
        t = time.perf_counter()
        tok = next(iter(extract(enc, ex, hidden=False, attention=True, level="token")))
        t_extract = time.perf_counter() - t
        word = next(iter(extract(enc, ex, hidden=False, attention=True, level="word")))
        row = {"tokens": len(tok.units), "words": len(word.units), "layers": enc.num_layers, "heads": enc.num_heads,
               "extract_token_s": round(t_extract, 2)}
        for name, other in (("token", None), ("both", HeadMap(word.units, word.attention.array, word.special))):
            t = time.perf_counter()
            page = render_head_view(tok.units, tok.attention.array, title=f"bench {n}", special=tok.special, other=other)
            path = write_page(out_dir / f"bench_{n}_{name}.html", page)
            row[f"probekit_{name}_s"] = round(time.perf_counter() - t, 2)
            row[f"probekit_{name}_MB"] = round(path.stat().st_size / 1e6, 2)
            del page
        if args.browser:
            row.update(browser_load_seconds(out_dir / f"bench_{n}_token.html"))
        if not args.no_bertviz:
            import torch
            from bertviz import head_view

            layers = tuple(torch.from_numpy(a[None]) for a in tok.attention)
            gc.collect()
            t = time.perf_counter()
            html = head_view(layers, list(tok.units), html_action="return").data
            row["bertviz_head_view_s"] = round(time.perf_counter() - t, 2)
            row["bertviz_head_view_MB"] = round(len(html) / 1e6, 1)
            del html, layers
            gc.collect()
        rows.append(row)
        print(json.dumps(row), file=sys.stderr)
    keys = list(rows[0])
    print(f"model: {enc.name}; text: {origin}; pages in {out_dir}")
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for r in rows:
        print("| " + " | ".join(str(r.get(k, "")) for k in keys) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps({"model": enc.name, "text": origin, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
