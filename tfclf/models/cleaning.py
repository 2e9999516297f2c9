"""The cleaning steps as TensorFlow ops: the one implementation that training data and exports share.

`CleanText(steps)` maps a string tensor [batch] to a string tensor [batch]. The run
cleans its data with it (`clean_texts`, called by stages/preparing.prepare) and the export puts
the same layer in front of the model (`with_cleaning`), so the served model sees the
text it was trained and evaluated on. The patterns come from `tfclf.data.clean`, the
readable Python reference; tests/test_clean.py checks that the two agree.

    >>> clean_texts(["Visit <b>http://x.io</b>  NOW!"], ("html", "urls", "lowercase", "whitespace"))
    ['visit now!']
"""
import re

import numpy as np

from tfclf._backend import keras, tf
from tfclf.data import clean

# === Steps: string tensor -> string tensor ===


def lowercase(texts):
    """ICU lower-casing; pieces between NULs separately, since the op ends a text at its first NUL."""
    pieces = tf.strings.lower(tf.strings.split(texts, "\x00"), encoding="utf-8")
    # Each piece with a NUL after it, the last one dropped (a NUL in an op attribute would end it).
    joined = tf.strings.reduce_join(tf.strings.join([pieces, tf.constant("\x00")]), axis=-1)
    length = tf.strings.length(joined)
    return tf.strings.substr(joined, tf.zeros_like(length), length - 1)


def html(texts):
    """Tags -> a space, then the entities of clean.ENTITIES, those that decode to '&' last (so that
    '&amp;lt;' becomes '&lt;', not '<', as in one left-to-right pass)."""
    texts = tf.strings.regex_replace(texts, clean.HTML_TAG, " ")
    by_character = {}
    for entity, character in clean.ENTITIES.items():
        by_character.setdefault(character, []).append(re.escape(entity))
    for character in sorted(by_character, key=lambda c: c == "&"):
        texts = tf.strings.regex_replace(texts, "|".join(by_character[character]), character.replace("\\", "\\\\"))
    return texts


def urls(texts):
    return tf.strings.regex_replace(texts, clean.URL, " ")


def emoji(texts):
    return tf.strings.regex_replace(texts, clean.EMOJI, "")


def punctuation(texts):
    return tf.strings.regex_replace(texts, clean.PUNCTUATION, "")


def non_alpha(texts):
    return tf.strings.regex_replace(texts, clean.NON_ALPHA, " ")


def whitespace(texts):
    return tf.strings.regex_replace(tf.strings.regex_replace(texts, clean.SPACES, " "), "^ | $", "")


def stopwords(texts):
    """Words (runs of non-space) whose lower-cased, punctuation-stripped form is not a stopword, joined by
    single spaces."""
    words = tf.strings.split(tf.strings.regex_replace(texts, clean.SPACES, " "), " ")
    keys = words.with_flat_values(lowercase(tf.strings.regex_replace(words.flat_values, clean.WORD_EDGES, "")))
    listed = "|".join(re.escape(word) for word in sorted(clean.english_stopwords()))
    keep = tf.logical_and(tf.strings.length(words) > 0,
                          tf.logical_not(tf.strings.regex_full_match(keys, f"(?:{listed})")))
    return tf.strings.reduce_join(tf.ragged.boolean_mask(words, keep), axis=-1, separator=" ")


GRAPH_STEPS = {"lowercase": lowercase, "html": html, "urls": urls, "emoji": emoji, "punctuation": punctuation,
               "stopwords": stopwords, "non_alpha": non_alpha, "whitespace": whitespace}

# === Layer ===


class CleanText(keras.layers.Layer):
    """Runs cleaning steps (names from clean.STEPS but clean.PYTHON_ONLY) in order on a string tensor [batch].

    Examples:
        >>> layer = CleanText(("lowercase", "whitespace"))
        >>> [text.decode() for text in layer(tf.constant([" Hello  WORLD "])).numpy()]
        ['hello world']
    """

    def __init__(self, steps=(), **kwargs):
        super().__init__(**kwargs)
        unknown = [step for step in steps if step not in GRAPH_STEPS]
        if unknown:
            raise ValueError(f"--clean {','.join(unknown)} cannot run as TensorFlow ops; steps that can: "
                             f"{', '.join(GRAPH_STEPS)}")
        self.steps = tuple(steps)

    def call(self, texts):
        for step in self.steps:
            texts = GRAPH_STEPS[step](texts)
        return texts

    def get_config(self):
        return {**super().get_config(), "steps": list(self.steps)}


# === Uses: the training data, the export ===


def _in_graph(texts: list, steps: tuple, batch_size: int) -> list:
    if not texts:
        return []
    layer = CleanText(steps)
    dataset = tf.data.Dataset.from_tensor_slices(np.asarray(texts, dtype=object)).batch(batch_size)
    dataset = dataset.map(layer, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return [text.decode("utf-8") for batch in dataset for text in batch.numpy()]


def clean_texts(texts, steps: tuple, batch_size: int = 1024) -> list:
    """The texts cleaned by `steps` in order: runs of graph steps through CleanText in batches, Python-only
    steps (lemmatize) through their clean.py function."""
    texts, pending = [str(text) for text in texts], []
    for step in (*steps, None):
        if step in GRAPH_STEPS:
            pending.append(step)
            continue
        if pending:
            texts, pending = _in_graph(texts, tuple(pending), batch_size), []
        if step is not None:
            texts = [clean.STEPS[step](text) for text in texts]
    return texts


def with_cleaning(model, steps: tuple):
    """Strings -> `model`'s output with CleanText(steps) in front; `model` itself when there are no steps."""
    if not steps:
        return model
    texts = keras.Input(shape=(), dtype=tf.string, name="text")
    return keras.Model(texts, model(CleanText(steps, name="clean_text")(texts)), name=f"cleaned_{model.name}")
