"""Text cleaning steps of seed 000, each a pure `str -> str` function: the readable reference.

Steps run in the order given (`--clean html,urls,lowercase`). Training does not call
these functions: `tfclf.models.cleaning.CleanText` runs the same steps as TensorFlow
ops, on the training data and inside the exported model, so both see the same text.
tests/test_clean.py checks that the two agree on a corpus of tricky strings. The
regular expressions below are shared by both (Python `re` and TensorFlow's RE2 read
them alike); where the engines differ, the TensorFlow behaviour is canonical:

* `html` decodes the entities of `ENTITIES` only (the common named ones and the
  numeric forms of `< > " ' & nbsp`), not all of `html.unescape`'s 2,231 names and
  every numeric reference: RE2 can replace fixed strings, not compute characters.
* White space is the set `str.isspace()` knows, spelled out (`SPACE`): RE2's `\\s` is
  ASCII only.
* `lowercase` is ICU's full lower-casing in TensorFlow, which equals `str.lower()`
  (final sigma and `İ` included) except for the capital letters added in Unicode 14
  (`_UNICODE_14_CAPITALS`), which TensorFlow's ICU leaves as they are; so does this
  function. TensorFlow's op ends a text at a NUL character; `CleanText` lower-cases
  the pieces between NULs, so NULs survive as they do here.
* `lemmatize` is a dictionary lookup (simplemma) with no TensorFlow form: it runs in
  Python, so a run with it cannot be exported (config validation refuses it).

Nothing here downloads: stopwords are scikit-learn's built-in English list (318
words) and lemmatization uses `simplemma`'s bundled English dictionary.

    >>> apply("Visit <b>http://x.io</b>  NOW!", ("html", "urls", "lowercase", "whitespace"))
    'visit now!'
"""
import functools
import re
import string

# Every character str.isspace() accepts, as the body of a character class for `re` and RE2.
SPACE = "\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
HTML_TAG = "<[^>]+>"
URL = f"(?i)(?:https?://|www\\.)[^{SPACE}]+"
# Emoji and pictographs, dingbats, flags, variation selectors, zero-width joiner, keycap, emoji tags.
EMOJI = ("[\U0001F000-\U0001FAFF\u2600-\u27BF\U0001F1E6-\U0001F1FF\u2300-\u23FF\u2B00-\u2BFF"
         "\uFE0F\u200D\u20E3\U000E0020-\U000E007F]+")
# All ASCII punctuation but the apostrophe, so contractions survive ("don't").
PUNCTUATION_REMOVED = string.punctuation.replace("'", "")
PUNCTUATION = "[" + "".join("\\" + character for character in PUNCTUATION_REMOVED) + "]"
# A word's leading and trailing ASCII punctuation (apostrophes too), ignored when looking it up as a stopword.
_ALL_PUNCTUATION = "".join("\\" + character for character in string.punctuation)
WORD_EDGES = f"^[{_ALL_PUNCTUATION}]+|[{_ALL_PUNCTUATION}]+$"
NON_ALPHA = f"[^A-Za-z\u00C0-\u024F'{SPACE}]+"
SPACES = f"[{SPACE}]+"
WORD = f"[^{SPACE}]+"
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "quot": '"', "apos": "'", "nbsp": "\xa0", "ndash": "\u2013",
                   "mdash": "\u2014", "hellip": "\u2026", "lsquo": "\u2018", "rsquo": "\u2019", "ldquo": "\u201c",
                   "rdquo": "\u201d", "copy": "\u00a9", "reg": "\u00ae", "trade": "\u2122", "euro": "\u20ac",
                   "pound": "\u00a3", "amp": "&"}
# Entity -> character; each numeric form too (&#39; &#039; &#x27; &#X27;) for < > " ' & nbsp.
ENTITIES = {f"&{name};": character for name, character in _NAMED_ENTITIES.items()}
ENTITIES.update({form.format(ord(character)): character for character in "<>\"'\xa0&"
                 for form in ("&#{};", "&#0{};", "&#x{:x};", "&#x{:X};", "&#X{:x};", "&#X{:X};")})
_ENTITY = re.compile("|".join(re.escape(entity) for entity in ENTITIES))
_UNICODE_14_CAPITALS = "\u2c2f\ua7c0\ua7d0\ua7d6\ua7d8\U00010570-\U00010595"
_LOWERABLE = re.compile(f"[^{_UNICODE_14_CAPITALS}]+")
PYTHON_ONLY = ("lemmatize",)  # steps without a TensorFlow form: they cannot travel inside an export


@functools.lru_cache(maxsize=1)
def english_stopwords() -> frozenset:
    """scikit-learn's built-in English list, imported on first use (scikit-learn takes seconds to import)."""
    from sklearn.feature_extraction import text as sklearn_text
    return frozenset(sklearn_text.ENGLISH_STOP_WORDS)


def lowercase(text: str) -> str:
    """Lower-cases every letter."""
    return _LOWERABLE.sub(lambda match: match.group().lower(), text)


def whitespace(text: str) -> str:
    """Collapses runs of white space and strips the ends."""
    return re.sub(SPACES, " ", text).strip()


def punctuation(text: str) -> str:
    """Removes ASCII punctuation except apostrophes."""
    return re.sub(PUNCTUATION, "", text)


def html(text: str) -> str:
    """Removes tags and decodes common entities (`&amp;` -> `&`, see ENTITIES)."""
    return _ENTITY.sub(lambda match: ENTITIES[match.group()], re.sub(HTML_TAG, " ", text))


def emoji(text: str) -> str:
    """Removes emoji and pictographs."""
    return re.sub(EMOJI, "", text)


def urls(text: str) -> str:
    """Replaces URLs (http://, https://, www.) by a space."""
    return re.sub(URL, " ", text)


def stopwords(text: str) -> str:
    """Drops English stopwords (case-insensitive), keeping the other words' case."""
    words = english_stopwords()
    return " ".join(word for word in re.findall(WORD, text)
                    if lowercase(re.sub(WORD_EDGES, "", word)) not in words)


def non_alpha(text: str) -> str:
    """Replaces digits and symbols by spaces; keeps letters (incl. accented), apostrophes."""
    return re.sub(NON_ALPHA, " ", text)


def lemmatize(text: str) -> str:
    """Dictionary lemmatization of each word (simplemma, English)."""
    import simplemma  # imported here: only this step needs it

    return " ".join(simplemma.lemmatize(word, lang="en") for word in re.findall(WORD, text))


STEPS = {
    "lowercase": lowercase,
    "html": html,
    "urls": urls,
    "emoji": emoji,
    "punctuation": punctuation,
    "stopwords": stopwords,
    "non_alpha": non_alpha,
    "whitespace": whitespace,
    "lemmatize": lemmatize,
}


def apply(text: str, steps: tuple) -> str:
    """The steps in order on one text (the reference; training runs models.cleaning.clean_texts)."""
    for step in steps:
        text = STEPS[step](text)
    return text
