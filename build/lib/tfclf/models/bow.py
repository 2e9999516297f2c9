"""The bag-of-words family: a fastText-style baseline on word uni/bi-grams that trains in seconds.

The model takes raw strings (its TextVectorization is the first layer), so export
and prediction need nothing in front of it. Building does no I/O: `adapt` on the
training texts is in memory.
"""
from tfclf._backend import keras, tf
from tfclf.models import family, layers


def build_bow(model_config, num_classes: int, seq_len: int, train_texts) -> keras.Model:
    """Strings -> word uni+bi-gram embeddings -> masked mean -> logits."""
    texts = keras.Input(shape=(), dtype=tf.string, name="text")
    # Uni- and bi-grams of a text of n words make 2n - 1 tokens.
    token_ids = layers.text_vectorizer(model_config, 2 * seq_len, train_texts, ngrams=2)(texts)
    embedded = keras.layers.Embedding(model_config.vocab_size, model_config.embedding_dim,
                                      mask_zero=True, name="embedding")(token_ids)
    pooled = layers.MaskedMean(name="mean_pool")(embedded)
    return keras.Model(texts, layers.logits_head(pooled, model_config, num_classes), name="bow")


class BagOfWords(family.Family):
    def build(self, model_config, train_config, num_classes, seq_len, train_texts):
        return build_bow(model_config, num_classes, seq_len, train_texts)
