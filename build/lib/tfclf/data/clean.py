"""Text cleaning steps of seed 000, each a pure `str -> str` function.

Steps run in the order given (`--clean html,urls,lowercase`). Nothing here
downloads: stopwords are scikit-learn's built-in English list (318 words) and
lemmatization uses `simplemma`'s bundled English dictionary (no model files).

    >>> apply("Visit <b>http://x.io</b>  NOW!", ("html", "urls", "lowercase", "whitespace"))
    'visit now!'
"""
import functools
import html as html_lib
import re
import string

_HTML_TAG = re.compile(r"<[^>]+>")
_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
# Emoji and pictographs, dingbats, flags, variation selectors, zero-width joiner.
_EMOJI = re.compile(
    "[\U0001F000-\U0001FAFF\U00002600-\U000027BF\U0001F1E6-\U0001F1FF"
    "\U00002300-\U000023FF\U00002B00-\U00002BFF\uFE0F\u200D]+")
# All ASCII punctuation but the apostrophe, so contractions survive ("don't").
_PUNCTUATION = str.maketrans("", "", string.punctuation.replace("'", ""))
_NON_ALPHA = re.compile(r"[^A-Za-z\u00C0-\u024F'\s]+")
_SPACES = re.compile(r"\s+")
_WORD = re.compile(r"\S+")


@functools.lru_cache(maxsize=1)
def english_stopwords() -> frozenset:
    """scikit-learn's built-in English list, imported on first use (scikit-learn takes seconds to import)."""
    from sklearn.feature_extraction import text as sklearn_text
    return frozenset(sklearn_text.ENGLISH_STOP_WORDS)


def lowercase(text: str) -> str:
    """Lower-cases every letter."""
    return text.lower()


def whitespace(text: str) -> str:
    """Collapses runs of white space and strips the ends."""
    return _SPACES.sub(" ", text).strip()


def punctuation(text: str) -> str:
    """Removes ASCII punctuation except apostrophes."""
    return text.translate(_PUNCTUATION)


def html(text: str) -> str:
    """Removes tags and decodes entities (`&amp;` -> `&`)."""
    return html_lib.unescape(_HTML_TAG.sub(" ", text))


def emoji(text: str) -> str:
    """Removes emoji and pictographs."""
    return _EMOJI.sub("", text)


def urls(text: str) -> str:
    """Replaces URLs (http://, https://, www.) by a space."""
    return _URL.sub(" ", text)


def stopwords(text: str) -> str:
    """Drops English stopwords (case-insensitive), keeping the other words' case."""
    words = english_stopwords()
    return " ".join(word for word in _WORD.findall(text) if word.lower().strip(string.punctuation) not in words)


def non_alpha(text: str) -> str:
    """Replaces digits and symbols by spaces; keeps letters (incl. accented), apostrophes."""
    return _NON_ALPHA.sub(" ", text)


def lemmatize(text: str) -> str:
    """Dictionary lemmatization of each word (simplemma, English)."""
    import simplemma  # imported here: only this step needs it

    return " ".join(simplemma.lemmatize(word, lang="en") for word in _WORD.findall(text))


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
    for step in steps:
        text = STEPS[step](text)
    return text
