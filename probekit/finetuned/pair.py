"""The two models of a comparison, the corpus they read, and the one joint pass over it.

``load_finetuned`` / ``load_base`` load the fine-tuned encoder (a ``python -m probekit.classify --finetune``
folder or a Hugging Face model folder) and its base with attention maps; ``check_same_vocabulary`` refuses a
pair whose tokenizers differ: word vectors and attention rows are compared unit by unit, so both models must
cut every input into the same pieces. ``joint_pass`` runs each model once over the corpus, a window of inputs
at a time, and feeds every example's two activations to the paired accumulators and to each model's analyses.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from probekit.core.encoder import DEFAULT_MODEL, Encoder, load_encoder
from probekit.core.errors import UserError
from probekit.core.examples import Example, seeded_sample

CLASSIFIER_CONFIG = "classifier.json"
GENERATED_DEFAULT = 500


def classifier_config(folder: Path) -> dict | None:
    """The classifier.json of a classifier folder (None for a plain model folder)."""
    for p in (folder / CLASSIFIER_CONFIG, folder / "classifier" / CLASSIFIER_CONFIG):
        if p.is_file():
            try:
                return json.loads(p.read_text(encoding="utf-8")) | {"_path": str(p)}
            except json.JSONDecodeError as exc:
                raise UserError(f"{p}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
    return None


def load_finetuned(finetuned, *, device: str = "cpu") -> tuple[Encoder, dict]:
    """(encoder with attention, what it is) for a classifier folder, a model folder or an :class:`Encoder`."""
    if isinstance(finetuned, Encoder):
        return _with_attention(finetuned), {"kind": "encoder", "path": None, "base": None}
    from probekit.classifiers.hf_model import finetuned_encoder

    hf = finetuned_encoder(finetuned, device=device)     # a loaded Hugging Face classifier or a cached model id
    if hf is not None:
        return hf
    folder = Path(finetuned)
    if not folder.exists():
        raise UserError(f"--finetuned {folder} does not exist")
    if not folder.is_dir():
        raise UserError(f"--finetuned {folder} is a file; give a classifier folder or a model folder")
    cfg = classifier_config(folder)
    if cfg is None:
        enc = load_encoder(str(folder), attention=True, device=device)
        return enc, {"kind": "model folder", "path": str(folder), "base": None}
    if cfg.get("encoder_mode") != "finetune":
        raise UserError(f"--finetuned {folder}: this classifier kept its encoder {cfg.get('encoder_mode')!r} "
                        f"(its encoder is the base model itself); train one with --finetune")
    enc_dir = Path(cfg["_path"]).parent / "encoder"
    if not enc_dir.is_dir():
        raise UserError(f"--finetuned {folder}: the fine-tuned encoder folder encoder/ is missing")
    from probekit.classifiers.verify import check_manifest, encoder_location

    check_manifest(enc_dir.parent, ("classifier.json", "classifier.safetensors", "encoder"))   # damaged or edited
    enc = load_encoder(str(enc_dir), attention=True, device=device)
    info = cfg.get("encoder", {})
    enc.name = f"{info.get('name', 'model')} fine-tuned ({folder.name})"
    enc._fingerprint = None     # the name is part of the fingerprint
    base = DEFAULT_MODEL if info.get("name") == DEFAULT_MODEL else info.get("source")
    if base != DEFAULT_MODEL and base:   # read only from inside the folder or where the user names it (or --base)
        try:
            base = encoder_location(enc_dir.parent, info, Path(cfg["_path"]))
        except UserError as refused:
            enc.refused_base = refused
    return enc, {"kind": "classifier", "path": str(folder), "base": base, "head": cfg.get("head"),
                 "labels": cfg.get("labels"), "max_length": cfg.get("max_length")}


def _with_attention(enc: Encoder) -> Encoder:
    if not enc.attention:
        raise UserError(f"model {enc.name} was loaded without attention maps: load_encoder(..., attention=True)")
    return enc


def load_base(base, recorded: str | None, *, device: str = "cpu", refused=None) -> Encoder:
    """The base: as given, else the one the classifier records as its encoder (unless ``refused``: a recorded
    base outside the classifier folder that the user did not name), else the bundled model."""
    if isinstance(base, Encoder):
        return _with_attention(base)
    if base is None and isinstance(refused, UserError):
        raise UserError(f"{refused} — or give --base")
    return load_encoder(base if base is not None else recorded, attention=True, device=device)


def check_same_vocabulary(base: Encoder, finetuned: Encoder) -> None:
    """One line if the tokenizers would cut an input differently (different vocabulary or special tokens)."""
    vb, vf = base.tokenizer.get_vocab(), finetuned.tokenizer.get_vocab()
    if vb != vf:
        raise UserError(f"--base {base.name} and --finetuned {finetuned.name} have different vocabularies "
                        f"({len(vb)} vs {len(vf)} tokens): give the model the fine-tuned one was trained from")
    sb = [base.tokenizer.cls_token, base.tokenizer.sep_token, type(base.tokenizer).__name__]
    sf = [finetuned.tokenizer.cls_token, finetuned.tokenizer.sep_token, type(finetuned.tokenizer).__name__]
    if sb != sf:
        raise UserError(f"--base {base.name} and --finetuned {finetuned.name} have different tokenizers "
                        f"({' '.join(map(str, sb))} vs {' '.join(map(str, sf))})")


def read_corpus(corpus, *, limit: int | None = None, seed: int = 0, data_root=None) -> tuple[list[Example], str]:
    """Examples and how they were found: ``None`` (generated sentences), a list of Examples, a named set
    (``rt:dev``) or a classifier's data file (``.jsonl``, ``.tsv``, ``.csv``), a ``.conllu`` or a ``.txt``
    (one sentence per line)."""
    from probekit.corpora.labelled import is_named, load_split
    from probekit.core import checks

    if corpus is None:
        from probekit.corpora.grammar import Grammar, generate

        n = limit or GENERATED_DEFAULT
        sents = generate(Grammar.load("english"), n, seed)
        return ([Example(words=list(s.words), meta={"source": f"generated:{i + 1}"}) for i, s in enumerate(sents)],
                f"{n} sentences generated from the english grammar (seed {seed})")
    if isinstance(corpus, (list, tuple)):
        examples, how = list(corpus), f"{len(corpus)} Examples given"
        if not all(isinstance(ex, Example) for ex in examples):
            raise UserError("--corpus: a list must hold probekit Examples")
    elif is_named(corpus):
        examples, how = load_split(corpus, what="--corpus", data_root=data_root), f"named set {corpus}"
    else:
        p = checks.input_file("corpus", corpus)
        if p.suffix.lower() in (".jsonl", ".json", ".ndjson", ".tsv", ".csv"):
            examples, how = load_split(str(p), what="--corpus"), f"classifier data {p}"
        else:
            from probekit.corpora.sentences import read_sentences

            examples, how = read_sentences(p), f"sentences of {p}"
    if not examples:
        raise UserError(f"--corpus {corpus}: no inputs")
    return seeded_sample(examples, limit, seed), how


def joint_pass(base: Encoder, finetuned: Encoder, examples: Sequence[Example], *, paired=(), base_analyses=(),
               finetuned_analyses=(), batch_size: int = 32, max_length: int | None = None,
               attention_from: str = "mean", window: int | None = None) -> int:
    """Run both models once over ``examples`` (word level, hidden states and attention), side by side.

    The corpus is tokenised once per model (one warning for the whole corpus); ``window`` inputs (default 4
    batches) are extracted from each model at a time and handed over in input order, so memory holds two windows.
    ``paired`` objects get ``update(base_activations, finetuned_activations)``; each model's analyses get its own
    activations via ``Analysis.update``. Returns how many inputs were truncated.
    """
    from probekit.core.extraction import encode_examples, extract

    limit = min(max_length or base.max_length, base.max_length, finetuned.max_length)
    examples = list(examples)
    enc_b = encode_examples(base, examples, max_length=limit)
    enc_f = encode_examples(finetuned, examples, max_length=limit, warn=False)
    for eb, ef in zip(enc_b, enc_f):
        if eb.input_ids != ef.input_ids or eb.alignment.units != ef.alignment.units:
            where = examples[eb.index].meta.get("source", f"input {eb.index + 1}")
            raise UserError(f"{where}: the two tokenizers cut this input differently; compare needs the base the "
                            f"fine-tuned model was trained from")
    window = window or 4 * batch_size
    options = dict(hidden=True, attention=True, level="word", attention_from=attention_from, batch_size=batch_size,
                   max_length=limit)
    for start in range(0, len(examples), window):
        part = slice(start, start + window)
        acts_b = {a.index: a for a in extract(base, examples, encoded=enc_b[part], desc="base", **options)}
        acts_f = {a.index: a for a in extract(finetuned, examples, encoded=enc_f[part], desc="fine-tuned",
                                              **options)}
        for i in range(start, min(start + window, len(examples))):
            a, b = acts_b.pop(i), acts_f.pop(i)
            for p in paired:
                p.update(a, b)
            for an in base_analyses:
                an.update(a, examples[i])
            for an in finetuned_analyses:
                an.update(b, examples[i])
    return sum(e.truncated for e in enc_b)
