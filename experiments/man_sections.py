"""A labelled long-text corpus from the manual pages installed on this machine (no download): each text is one
page rendered to plain text, its label the manual section it is filed under.

    python experiments/man_sections.py                      # -> ~/.cache/tfclf/man_sections.jsonl
    python -m tfclf.run --data ~/.cache/tfclf/man_sections.jsonl --text-column text --label-column label

Labels: user commands (section 1), system calls (2), library functions (3), file formats (5), overviews (7),
administration (8); sections 4 and 6 have too few pages. Pages are taken in a seeded random order of their
file names, at most --per-label per label and --per-family per family of names (the name up to its first `_`,
`-`, `.` or `:`: without it `gcloud_*` would be most of section 1, `SSL_*` much of 3), keeping pages of
--min-words to --max-words words (a page that says only `.so other-page`, a symlink, and an exact repeat of an
earlier page's text are skipped).

What is removed so the section cannot be read off the page: groff's header and footer lines (`open(2)  System
Calls Manual  open(2)`) and the section numbers in references (`see openat2(2)` -> `see openat2`). What stays
is real: a system call's page has a SYNOPSIS with `#include`, as a library function's does, which is why 2 and
3 are the hard pair. The set depends on the packages installed (Debian's manual pages here); the output records
each page's file, so a set can be compared or rebuilt.

Rendering is local (`groff -mandoc -Tutf8`, 2 at a time) and the output is written atomically; a page that
fails to render is skipped and counted. No network.
"""
import argparse
import concurrent.futures
import gzip
import hashlib
import json
import os
import random
import re
import subprocess
import sys

MAN = "/usr/share/man"
LABELS = {"1": "user_commands", "2": "system_calls", "3": "library_functions", "5": "file_formats",
          "7": "overviews", "8": "administration"}
FAMILY = re.compile(r"[_.:-]")
REFERENCE = re.compile(r"\b([\w.:+-]+)\(\d[a-z]*\)")  # `open(2)`, `ssl(7ssl)`, `POSIX::open(3pm)`


def page_files(root: str, seed: int) -> dict:
    """label -> the section's page files (no symlinks), in a seeded random order."""
    pages = {}
    for section, label in LABELS.items():
        folder = os.path.join(root, f"man{section}")
        names = sorted(name for name in os.listdir(folder) if not os.path.islink(os.path.join(folder, name))) \
            if os.path.isdir(folder) else []
        random.Random(f"{seed}-{section}").shuffle(names)
        pages[label] = [os.path.join(folder, name) for name in names]
    return pages


def render(path: str) -> str:
    """The page as plain text without groff's header and footer lines ("" when it does not render)."""
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as handle:
            source = handle.read()
        if source.lstrip().startswith(b".so "):
            return ""
        done = subprocess.run(["groff", "-mandoc", "-Tutf8", "-P-cbou"], input=source, capture_output=True,
                              timeout=30, env={**os.environ, "LC_ALL": "C.UTF-8"})
    except (OSError, subprocess.TimeoutExpired):
        return ""
    lines = [line.rstrip() for line in done.stdout.decode("utf-8", "replace").splitlines()]
    content = [line for line in lines if line.strip()]
    return "\n".join(content[1:-1]) if len(content) > 2 else ""


def clean(text: str) -> str:
    """Section numbers out of references; runs of spaces and blank lines collapsed."""
    text = REFERENCE.sub(r"\1", text)
    text = re.sub(r"[ \t]+", " ", text)
    return re.sub(r"\n\s*\n+", "\n", text).strip()


def family(path: str) -> str:
    return FAMILY.split(os.path.basename(path), 1)[0].lower()


def _first_of_each_family(files: list, limit: int) -> list:
    """The files in order, at most `limit` of each family (rendering more of a family is wasted)."""
    seen = {}
    for path in files:
        seen[family(path)] = seen.get(family(path), 0) + 1
        if seen[family(path)] <= limit:
            yield path


def collect(pages: dict, per_label: int, per_family: int, min_words: int, max_words: int, workers: int) -> tuple:
    """(rows, counts of pages skipped by reason): at most per_label kept pages per label and per_family per
    family of names, in the seeded order."""
    rows, seen, skipped = [], set(), {"too_short": 0, "too_long": 0, "repeat": 0, "unrendered": 0, "family": 0}
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        for label, files in pages.items():
            files, kept, position, families = list(_first_of_each_family(files, 3 * per_family)), 0, 0, {}
            while kept < per_label and position < len(files):
                batch = files[position:position + 4 * workers]
                position += len(batch)
                for path, text in zip(batch, pool.map(render, batch)):
                    words = len(text.split())
                    digest = hashlib.sha256(text.encode()).hexdigest()
                    reason = ("unrendered" if not text else "too_short" if words < min_words else
                              "too_long" if words > max_words else "repeat" if digest in seen else
                              "family" if families.get(family(path), 0) >= per_family else "")
                    if reason:
                        skipped[reason] += 1
                    elif kept < per_label:
                        seen.add(digest)
                        families[family(path)] = families.get(family(path), 0) + 1
                        rows.append({"text": clean(text), "label": label, "page": os.path.relpath(path, MAN)})
                        kept += 1
            print(f"{label}: {kept} pages ({position} of {len(files)} files read)", file=sys.stderr)
    return rows, skipped


def write_jsonl(rows: list, path: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    partial = f"{path}.partial"
    with open(partial, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    os.replace(partial, path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=os.path.join(os.path.expanduser("~"), ".cache", "tfclf", "man_sections.jsonl"))
    parser.add_argument("--per-label", type=int, default=320)
    parser.add_argument("--per-family", type=int, default=10)
    parser.add_argument("--min-words", type=int, default=300)
    parser.add_argument("--max-words", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    if not os.path.isdir(MAN):
        print(f"tfclf: error: {MAN}: no manual pages on this machine; install some (e.g. manpages-dev) or build "
              "another long-text set", file=sys.stderr)
        return 2
    rows, skipped = collect(page_files(MAN, args.seed), args.per_label, args.per_family, args.min_words, args.max_words, args.workers)
    write_jsonl(rows, args.out)
    words = sorted(len(row["text"].split()) for row in rows)
    print(f"wrote {len(rows)} pages to {args.out}: median {words[len(words) // 2]} words, 95th percentile "
          f"{words[int(0.95 * (len(words) - 1))]}; skipped {skipped}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
