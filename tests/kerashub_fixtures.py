"""A tiny KerasHub BERT preset written to a directory, for tests that must stay offline and fast.

Kept out of conftest.py so that only the tests that ask for it import Keras 3 (through
tfclf.models.kerashub, the one package that may)."""


def write_tiny_preset(directory: str, words, hidden: int = 16, layers: int = 1, positions: int = 64) -> str:
    """A 1-layer, width-16 BertBackbone and its BertTextClassifierPreprocessor (vocabulary: the special
    tokens, `words`, the digits), saved with save_to_preset; returns the directory."""
    from tfclf.models.kerashub import transformer as kerashub
    keras_hub = kerashub.keras_hub
    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + sorted(set(words)) + [str(i) for i in range(10)]
    tokenizer = keras_hub.models.BertTokenizer(vocabulary=vocabulary, lowercase=True)
    preprocessor = keras_hub.models.BertTextClassifierPreprocessor(tokenizer, sequence_length=positions)
    kerashub.keras.utils.set_random_seed(0)
    backbone = keras_hub.models.BertBackbone(vocabulary_size=len(vocabulary), num_layers=layers, num_heads=2,
                                             hidden_dim=hidden, intermediate_dim=2 * hidden,
                                             max_sequence_length=positions)
    backbone.save_to_preset(directory)
    preprocessor.save_to_preset(directory)
    return directory
