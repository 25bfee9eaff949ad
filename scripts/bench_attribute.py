"""Benchmark: ``attribute``'s CPU time with every method, integrated gradients against its floor, the page.

Measured in one run (``nice python scripts/bench_attribute.py``), printed as a table:

(a) CPU time (``time.process_time``, and wall time) of ``pk.attribute`` with every built-in method (pooling,
    attention-cls, attention-rollout, gradient, grad-input, integrated gradients, occlusion; ``--methods`` to
    choose) on ``--sentences`` RT polarity test sentences (seeded shuffle), batches of 16, ``--steps`` IG steps.
    To compare two versions of probekit, run the script once per version on the same saved classifier
    (``--save-classifier DIR`` the first time, ``--classifier DIR`` after; ``--only-a``), with ``PYTHONPATH``
    pointing at each version's tree, and divide the two CPU times.

(b) integrated gradients (Captum LayerIntegratedGradients through ``pk.attribute``'s method) on 200 RT
    polarity test sentences (seeded shuffle) at 50 steps, batches of 16, against the floor: the same
    batches, 50 × (forward + backward) done by hand (scaled embeddings swapped in by a hook, gradients
    accumulated with the same Gauss–Legendre weights). The two alternate batch by batch (``--repeats``
    passes, best shown); the ratio target is ≤ 1.3. The by-hand attributions are compared with Captum's.
(c) the coloured-text page for 1,000 RT test sentences, 7 methods' rows (pooling computed for real, the
    other rows seeded random scores of the same shape): time to render and write, the page size, and (with
    Chromium installed) the time a headless browser takes to load it, then to apply the misclassified filter
    and the confidence sort.

The classifier is a frozen attention-pooling head on the bundled all-MiniLM-L6-v2, trained by ``pk.classify``
on ``--train`` sentences (seeded shuffle) of the seeded RT train split (activation cache in a temporary folder).
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def shuffled(examples, seed=0):
    """The split files list negatives first; a seeded shuffle mixes the labels."""
    return [examples[i] for i in np.random.default_rng(seed).permutation(len(examples))]


def train_classifier(args, cache):
    import probekit as pk
    from probekit.corpora.labelled import load_split

    train = shuffled(load_split("rt:train", what="--train", data_root=args.data_root))[: args.train]
    dev = shuffled(load_split("rt:dev", what="--dev", data_root=args.data_root))[:300]
    t0 = time.perf_counter()
    res = pk.classify(train, dev, head="attention", encoder="frozen", cache_dir=cache, quiet=True, seed=0,
                      baselines=False)
    acc = res.frame.query("split == 'dev' and metric == 'accuracy'")["value"]
    return res.classifier.eval(), time.perf_counter() - t0, float(acc.iloc[0]) if len(acc) else float("nan")


def batches_of(clf, examples, batch_size):
    order = sorted(range(len(examples)), key=lambda i: len(examples[i].text or ""))
    out = []
    for s in range(0, len(order), batch_size):
        batch = clf.encode([examples[i] for i in order[s:s + batch_size]], warn=False)
        from probekit.attribution.words import model_inputs

        with torch.no_grad():
            target = clf(**model_inputs(batch)).argmax(1)
        out.append((batch, target))
    return out


def ig_captum(clf, batches, steps, batch_size):
    from probekit.attribution.gradients import integrated_gradients

    return [integrated_gradients(clf, b, t, steps=steps, ig_rows=batch_size)[0] for b, t in batches]


def ig_by_hand(clf, batches, steps):
    """The floor: per batch, ``steps`` forward + backward passes on scaled embeddings, nothing else."""
    from captum.attr._utils.approximation_methods import approximation_parameters

    from probekit.attribution.gradients import baseline_ids
    from probekit.attribution.words import model_inputs

    sizes_fn, alphas_fn = approximation_parameters("gausslegendre")
    sizes, alphas = sizes_fn(steps), alphas_fn(steps)
    layer = clf.embedding_layer
    out = []
    for batch, target in batches:
        inputs = model_inputs(batch)
        with torch.no_grad():
            ex, eb = layer(inputs["input_ids"]), layer(baseline_ids(clf, batch))
        total = torch.zeros_like(ex)
        current = {}
        handle = layer.register_forward_hook(lambda m, i, o: current["e"])
        try:
            for a, w in zip(alphas, sizes):
                current["e"] = (eb + a * (ex - eb)).requires_grad_(True)
                logits = clf(**inputs)
                (g,) = torch.autograd.grad(logits.gather(1, target[:, None]).sum(), current["e"])
                total += w * g
        finally:
            handle.remove()
        out.append(((ex - eb) * total).sum(-1))
    return out


def timed(fn, *a):
    t0 = time.perf_counter()
    r = fn(*a)
    return time.perf_counter() - t0, r


def browser_times(page: Path):
    import shutil

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    chrome = shutil.which("chromium") or "/usr/bin/chromium"
    driver_path = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    opts = webdriver.ChromeOptions()
    opts.binary_location = chrome
    profile = tempfile.mkdtemp(prefix="pk-bench-chromium-")
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 f"--user-data-dir={profile}", "--host-resolver-rules=MAP * ~NOTFOUND"):
        opts.add_argument(flag)
    d = webdriver.Chrome(service=Service(driver_path), options=opts)
    try:
        t0 = time.perf_counter()
        d.get(page.as_uri())
        assert d.execute_script("return window.probekitAttribution.total") > 0
        load = time.perf_counter() - t0
        t0 = time.perf_counter()
        d.find_element(By.ID, "pk-wrong").click()
        d.find_element(By.CSS_SELECTOR, "#pk-sort option[value='asc']").click()
        shown = len(d.execute_script("return window.probekitAttribution.order"))
        interact = time.perf_counter() - t0
    finally:
        d.quit()
        shutil.rmtree(profile, ignore_errors=True)
    return load, interact, shown


ALL_METHODS = ["pooling", "attention-cls", "attention-rollout", "gradient", "grad-input", "integrated-gradients",
               "occlusion"]


def attribute_cpu(clf, examples, args):
    """(a): CPU and wall seconds of one pk.attribute call with ``args.methods`` (after a one-batch warm-up)."""
    import probekit as pk

    kw = dict(methods=args.methods, steps=args.steps, batch_size=args.batch_size, quiet=True)
    pk.attribute(clf, data=examples[: args.batch_size], **kw)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    res = pk.attribute(clf, data=examples, **kw)
    return time.process_time() - cpu0, time.perf_counter() - wall0, res


def part_a(clf, test, args):
    import probekit

    cpu, wall, res = attribute_cpu(clf, test[: args.sentences], args)
    print(f"\n(a) pk.attribute, {args.sentences} RT test sentences, batches of {args.batch_size}, IG {args.steps} "
          f"steps, probekit from {Path(probekit.__file__).parent.parent}")
    print(f"  methods: {', '.join(args.methods)}")
    print(f"  {'CPU time':<34}{cpu:8.2f} s   (wall {wall:.2f} s; {len(res.frame)} word rows)")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--methods", nargs="+", default=ALL_METHODS, help="methods timed in (a) (default: all seven)")
    p.add_argument("--classifier", default=None, help="a saved classifier folder (default: train one)")
    p.add_argument("--save-classifier", default=None, help="save the trained classifier here")
    p.add_argument("--only-a", action="store_true", help="only (a)")
    p.add_argument("--data-root", default=None, help="folder holding rt-sentence-polarity/ (default ../shared/data)")
    p.add_argument("--train", type=int, default=2000, help="training sentences for the head (default 2000)")
    p.add_argument("--sentences", type=int, default=200, help="sentences for (a) and (b) (default 200)")
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1: a shared machine)")
    p.add_argument("--end-to-end", action="store_true", help="also time pk.attribute(methods=[IG]) end to end")
    p.add_argument("--page-examples", type=int, default=1000)
    p.add_argument("--no-browser", action="store_true")
    args = p.parse_args()

    import probekit as pk
    from probekit.corpora.labelled import load_split

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    print(f"torch threads: {torch.get_num_threads()}")
    with tempfile.TemporaryDirectory() as tmp:
        if args.classifier:
            clf = pk.load_classifier(args.classifier).eval()
            print(f"classifier: {args.classifier} (head {clf.head_type}, encoder {clf.encoder_mode})")
        else:
            clf, t_train, dev_acc = train_classifier(args, Path(tmp) / "cache")
            print(f"classifier: frozen attention head on all-MiniLM-L6-v2, trained by pk.classify on {args.train} "
                  f"RT train sentences in {t_train:.1f} s (dev accuracy {dev_acc:.3f} on 300)")
            if args.save_classifier:
                from probekit.classifiers.saved import save_classifier

                save_classifier(clf, args.save_classifier)
        test = shuffled(load_split("rt:test", what="--data", data_root=args.data_root))
        part_a(clf, test, args)
        if args.only_a:
            return

        # (b) IG against its floor
        batches = batches_of(clf, test[: args.sentences], args.batch_size)
        cap, hand = np.zeros(args.repeats), np.zeros(args.repeats)
        diff = 0.0
        ig_captum(clf, batches[:1], 2, args.batch_size)      # warm-up: Captum's imports, first-call costs
        ig_by_hand(clf, batches[:1], 2)
        for r in range(args.repeats):
            for one in batches:          # alternate batch by batch, so load changes hit both alike
                t, a = timed(ig_captum, clf, [one], args.steps, args.batch_size)
                cap[r] += t
                t, h = timed(ig_by_hand, clf, [one], args.steps)
                hand[r] += t
                diff = max(diff, float((a[0] - h[0]).abs().max()))
        if args.end_to_end:
            t_full, res = timed(lambda: pk.attribute(clf, data=test[: args.sentences],
                                                      methods=["integrated-gradients"], steps=args.steps,
                                                      batch_size=args.batch_size, quiet=True))
            flagged = int(res.frame.groupby("example")["flagged"].first().astype(bool).sum())
        print(f"\n(b) integrated gradients, {args.sentences} RT test sentences, {args.steps} steps, "
              f"batches of {args.batch_size} ({len(batches)} batches)")
        print(f"  {'Captum LIG (method)':<34}{min(cap):8.2f} s   (runs: {', '.join(f'{x:.2f}' for x in cap)})")
        runs = ", ".join(f"{x:.2f}" for x in hand)
        print(f"  {f'floor: {args.steps} x (fwd + bwd) by hand':<34}{min(hand):8.2f} s   (runs: {runs})")
        print(f"  {'ratio (target <= 1.3)':<34}{min(cap) / min(hand):8.3f}")
        if args.end_to_end:
            print(f"  {'pk.attribute end to end':<34}{t_full:8.2f} s   ({flagged} of {args.sentences} flagged, "
                  f"|delta| > 5%)")
        print(f"  max |Captum - by hand| per token: {diff:.2e}")

        # (c) the page at 1,000 examples: real words, labels and predictions (pooling computed for real);
        # the other methods' rows are seeded random scores of the same shape (the page's cost is the shape)
        import pandas as pd

        from probekit.attribution.registry import ORDER, get_method
        from probekit.attribution.render import render_html

        examples = test[: args.page_examples]
        t_attr, res = timed(lambda: pk.attribute(clf, data=examples, methods=["pooling"],
                                                  batch_size=args.batch_size, quiet=True))
        rng = np.random.default_rng(0)
        parts = [res.frame]
        for m in ORDER[1:]:
            f = res.frame.copy()
            f["method"] = m
            noise = rng.normal(size=len(f))
            f["score"] = noise if get_method(m).signed else np.abs(noise)
            parts.append(f)
        frame = pd.concat(parts, ignore_index=True)
        t_html, page = timed(render_html, frame)
        out = Path(tmp) / "attributions.html"
        t_write, _ = timed(out.write_text, page, "utf-8")
        size = out.stat().st_size
        print(f"\n(c) page for {len(examples)} RT test sentences x {len(ORDER)} methods = {len(frame)} word rows "
              f"(pooling real, {len(ORDER) - 1} methods' rows seeded random)")
        print(f"  {'pooling attributions, 1,000 ex.':<34}{t_attr:8.2f} s")
        print(f"  {'render_html':<34}{t_html:8.2f} s")
        print(f"  {'write':<34}{t_write:8.2f} s")
        print(f"  {'attributions.html':<34}{size / 1e6:8.2f} MB  ({size / len(examples) / 1e3:.1f} kB per example)")
        if not args.no_browser:
            try:
                load, interact, shown = browser_times(out)
                print(f"  {'headless Chromium: load':<34}{load:8.2f} s")
                print(f"  {'filter + sort':<34}{interact:8.2f} s   ({shown} misclassified shown)")
            except Exception as exc:  # noqa: BLE001 - the browser is optional here
                print(f"  headless Chromium not measured: {exc.__class__.__name__}: {str(exc).splitlines()[0]}")


if __name__ == "__main__":
    main()
