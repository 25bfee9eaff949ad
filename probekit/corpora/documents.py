"""What the attention statistics run on: a corpus split into documents, fed as single sentences or as
``[CLS] A [SEP] B [SEP]`` pairs of consecutive sentences (Clark et al.'s unlabeled Wikipedia segments).

Documents:
- ``.txt``: one sentence per line (whitespace-separated words), a blank line between documents;
- ``.conllu``: a new document at every ``# newdoc`` comment; a file without any is one document;
- no corpus: sentences generated from the toolkit's English grammar, 8 to a document.

Pairs: consecutive sentences of one document are collected while they fit the token budget (the model's own
special tokens included); the group is split into A and B at the sentence boundary that balances their token
counts most evenly. A group of one sentence (the last of a document, or a sentence that alone fills the
budget) is split at its middle word, so every input has two segments; a sentence longer than the budget is
truncated by the tokenizer. Clark split at a random boundary; balanced is deterministic and gives both
segments comparable weight.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from probekit.corpora.text import read_text_lines, read_utf8_lines
from probekit.core.errors import UserError
from probekit.core.examples import Example

GENERATED_PER_DOCUMENT = 8


@dataclass
class Inputs:
    """Model inputs with the document each came from and its weight in the averages."""

    examples: list[Example]
    documents: list[int]          # document index of each input
    n_sentences: int
    n_documents: int
    source: str                   # how the documents were found, for config.json

    def weights(self, mode: str) -> list[float]:
        """``input``: every input counts once (Clark); ``document``: every document counts once in total."""
        if mode == "input":
            return [1.0] * len(self.examples)
        if mode != "document":
            raise ValueError("weight mode must be 'input' or 'document'")
        sizes: dict[int, int] = {}
        for d in self.documents:
            sizes[d] = sizes.get(d, 0) + 1
        return [1.0 / sizes[d] for d in self.documents]


def read_documents(path: str | Path | None, *, limit: int | None = None, seed: int = 0,
                   generated: int = 1000) -> tuple[list[list[Example]], str]:
    """Sentences grouped into documents, and a line saying how the grouping was made."""
    if path is None:
        from probekit.corpora.grammar import Grammar, generate

        n = limit or generated
        sents = generate(Grammar.load("english"), n, seed)
        docs = [[Example(words=list(s.words), meta={"source": f"generated:{i + 1}"})
                 for i, s in enumerate(sents[k:k + GENERATED_PER_DOCUMENT], k)]
                for k in range(0, len(sents), GENERATED_PER_DOCUMENT)]
        return docs, f"{n} sentences generated from the english grammar (seed {seed}), " \
                     f"{GENERATED_PER_DOCUMENT} per document"
    p = Path(path)
    if p.suffix.lower() == ".conllu":
        docs, how = _conllu_documents(p, limit)
    else:
        docs, how = _text_documents(p, limit), "blank lines separate documents"
    if not any(docs):
        raise UserError(f"corpus {p} has no sentences")
    return docs, how


def _text_documents(path: Path, limit: int | None) -> list[list[Example]]:
    docs: list[list[Example]] = [[]]
    count = 0
    for lineno, text in read_text_lines(path):
        if not text:
            if docs[-1]:
                docs.append([])
            continue
        if limit is not None and count >= limit:
            break
        docs[-1].append(Example(words=text.split(), meta={"source": f"{path}:{lineno}"}))
        count += 1
    return [d for d in docs if d]


def _conllu_documents(path: Path, limit: int | None) -> tuple[list[list[Example]], str]:
    """CoNLL-U sentences (read by :func:`probekit.conllu.read_conllu`) grouped at ``# newdoc`` comments."""
    from probekit.corpora.conllu import read_conllu

    examples = read_conllu(path, limit=limit)
    if not examples:
        raise UserError(f"corpus {path} has no sentences")
    # Which sentence blocks begin a document: a "# newdoc" line inside a block, or in a comment-only block
    # before it. read_conllu names each sentence by its block's first line, so the two scans line up.
    lines = read_utf8_lines(path, what="CoNLL-U file")
    starts: set[int] = set()
    pending = False
    block_start = None
    has_words = False
    for lineno, line in enumerate(lines + [""], 1):
        stripped = line.strip()
        if stripped:
            if block_start is None:
                block_start, has_words = lineno, False
            if stripped.startswith("#"):
                body = stripped[1:].strip()
                pending |= body == "newdoc" or body.startswith("newdoc ") or body.startswith("newdoc=")
            else:
                has_words = True
        elif block_start is not None:
            if has_words and pending:
                starts.add(block_start)
                pending = False
            block_start = None
    docs: list[list[Example]] = []
    for ex in examples:
        line = int(str(ex.meta.get("source", "")).rsplit(":", 1)[-1] or 0)
        if not docs or line in starts:
            docs.append([])
        docs[-1].append(ex)
    how = "'# newdoc' comments start documents" if starts else "no '# newdoc' comments: the file is one document"
    return docs, how


def single_inputs(docs: list[list[Example]]) -> Inputs:
    """Every sentence on its own: ``[CLS] sentence [SEP]``."""
    examples, documents = [], []
    for d, doc in enumerate(docs):
        for ex in doc:
            examples.append(ex)
            documents.append(d)
    return Inputs(examples, documents, len(examples), len(docs), "single sentences")


def pair_inputs(docs: list[list[Example]], tokenizer, budget: int = 128) -> Inputs:
    """Consecutive sentences of each document packed as ``[CLS] A [SEP] B [SEP]`` within ``budget`` tokens."""
    specials = tokenizer.num_special_tokens_to_add(pair=True)
    if budget < specials + 2:
        raise UserError(f"--budget {budget} leaves no room for two segments ({specials} special tokens)")
    flat = [ex for doc in docs for ex in doc]
    counts = iter(len(ids) for ids in tokenizer([list(ex.words) for ex in flat], is_split_into_words=True,
                                                 add_special_tokens=False)["input_ids"])
    examples, documents = [], []
    for d, doc in enumerate(docs):
        group: list[tuple[Example, int]] = []
        for ex in doc:
            n = next(counts)
            if group and sum(c for _, c in group) + n + specials > budget:
                examples.append(_pair(group))
                documents.append(d)
                group = []
            group.append((ex, n))
        if group:
            examples.append(_pair(group))
            documents.append(d)
    return Inputs(examples, documents, len(flat), len(docs), f"sentence pairs within {budget} tokens")


def _pair(group: list[tuple[Example, int]]) -> Example:
    sources = [ex.meta.get("source") for ex, _ in group]
    if len(group) == 1:
        words = list(group[0][0].words)
        if len(words) < 2:
            return Example(words=words, meta={"sources": sources})
        half = len(words) // 2
        return Example(words=words[:half], words_b=words[half:], meta={"sources": sources})
    total = sum(c for _, c in group)
    best, running, best_gap = 1, 0, None
    for k in range(1, len(group)):
        running += group[k - 1][1]
        gap = abs(total - 2 * running)
        if best_gap is None or gap < best_gap:
            best, best_gap = k, gap
    a = [w for ex, _ in group[:best] for w in ex.words]
    b = [w for ex, _ in group[best:] for w in ex.words]
    return Example(words=a, words_b=b, meta={"sources": sources})
