"""tf.data pipelines: batches of (text, label[, weight]), optionally length-grouped and tokenized per batch."""
import numpy as np

from tfclf._backend import tf


def labels_of(y_true):
    """Integer labels from y_true of shape [batch], [batch, 1] or packed [batch, 1 + classes]."""
    y_true = tf.convert_to_tensor(y_true)
    if y_true.shape.rank == 2:
        y_true = y_true[:, 0]
    return tf.cast(tf.reshape(y_true, [-1]), tf.int32)


def _grouped_by_length(batch_size: int):
    """A pool of examples (label second, length last) -> the other columns, ordered so that consecutive
    `batch_size` runs are batches of similar lengths that keep the pool's class mix.

    Plain length sorting would make label-homogeneous batches wherever length predicts the label (spam is
    long): each class is sorted by length on its own, its k-th chunk goes to batch k."""
    def group(*columns):
        labels, lengths = tf.cast(labels_of(columns[1]), tf.int64), tf.cast(columns[-1], tf.int64)
        size = tf.shape(lengths, out_type=tf.int64)[0]
        batches = (size + batch_size - 1) // batch_size
        span = tf.reduce_max(lengths) + 1
        by_class = tf.argsort(labels * span + lengths, stable=True)
        sorted_labels = tf.gather(labels, by_class)
        classes = tf.reduce_max(labels) + 1
        position = tf.range(size)
        rank = position - tf.gather(tf.math.unsorted_segment_min(position, sorted_labels, classes), sorted_labels)
        count = tf.gather(tf.math.unsorted_segment_sum(tf.ones_like(position), sorted_labels, classes), sorted_labels)
        batch_of = rank * batches // count
        within = tf.argsort(batch_of * span + tf.gather(lengths, by_class), stable=True)
        order = tf.gather(by_class, within)
        return tuple(tf.gather(column, order) for column in columns[:-1])
    return group


def make_dataset(texts, labels, batch_size: int, shuffle: bool = False, seed: int = 0,
                 map_fn=None, sample_weights=None, lengths=None, pool_batches: int = 32,
                 window_fn=None) -> tf.data.Dataset:
    """(text, label[, weight]) batches: optional per-batch `map_fn` in parallel, cached, shuffled,
    prefetched. `labels` are class ids, or float rows [label, teacher probabilities...] (distillation), or
    multi-hot float rows [labels] (multi-label data; length grouping then keeps the first label's mix).

    With `lengths` (tokens per text), batches are length-grouped: each pool of `pool_batches` batches
    (after shuffling) is cut into batches of similar lengths and the pool's class mix (_grouped_by_length),
    whose order is shuffled again, so a batch padded to its longest member carries little padding
    (examples leave in a different order: not for predictions that must line up with the input).

    With `window_fn` (long texts, --long-text chunk), each batch of texts becomes its windows, each with its
    text's label and weight (models/windows.py), re-cut into batches of `batch_size` windows (shuffled
    among a few batches when training) before `map_fn`."""
    labels = np.asarray(labels)
    labels = labels.astype(np.float32) if labels.ndim == 2 else labels.astype(np.int32)
    # Python strings, not numpy's fixed-width astype(str): 4 bytes per character of the longest text, per text.
    columns = (np.array([str(text) for text in texts], dtype=object), labels)
    if sample_weights is not None:
        columns += (np.asarray(sample_weights, dtype=np.float32),)
    if lengths is not None:
        columns += (np.asarray(lengths, dtype=np.int32),)
    dataset = tf.data.Dataset.from_tensor_slices(columns)
    dataset = dataset.cache()
    if shuffle:
        dataset = dataset.shuffle(len(texts), seed=seed, reshuffle_each_iteration=True)
    if lengths is not None:
        dataset = dataset.batch(batch_size * pool_batches).map(_grouped_by_length(batch_size)).unbatch()
        dataset = dataset.batch(batch_size)
        if shuffle:
            dataset = dataset.shuffle(pool_batches, seed=seed + 1, reshuffle_each_iteration=True)
    else:
        dataset = dataset.batch(batch_size)
    if window_fn is not None:
        dataset = dataset.map(window_fn, num_parallel_calls=tf.data.AUTOTUNE).unbatch()
        if shuffle:
            dataset = dataset.shuffle(batch_size * 4, seed=seed + 2, reshuffle_each_iteration=True)
        dataset = dataset.batch(batch_size)
    if map_fn is not None:
        dataset = dataset.map(map_fn, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)


def stream_dataset(batches_fn, batch_size: int, shuffle_buffer: int = 0, seed: int = 0, map_fn=None,
                   class_weights=None, group_lengths: bool = False, repeat: bool = False, skip: int = 0,
                   pool_batches: int = 32) -> tf.data.Dataset:
    """(text, label[, weight]) batches from a streamed corpus: `batches_fn()` yields (texts, label ids) numpy
    batches (data.stream.Corpus.batches), read anew each pass. Memory is bounded by the shuffle buffer and
    the length-grouping pool, not the corpus.

    `shuffle_buffer` (0: file order), `repeat` (endless: fit counts the steps of an epoch), `skip` (examples
    to pass over first: a run resumed mid-epoch continues where its backup was taken), `class_weights` (a
    per-class weight becomes each example's), `group_lengths` (pools of `pool_batches` batches cut into batches
    of similar word counts, as make_dataset does with token lengths)."""
    signature = (tf.TensorSpec([None], tf.string), tf.TensorSpec([None], tf.int32))
    dataset = tf.data.Dataset.from_generator(batches_fn, output_signature=signature).unbatch()
    if repeat:
        dataset = dataset.repeat()
    if skip:
        dataset = dataset.skip(skip)
    if shuffle_buffer:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if class_weights is not None:
        table = tf.constant([class_weights[i] for i in range(len(class_weights))], tf.float32)
        dataset = dataset.map(lambda text, label: (text, label, tf.gather(table, label)))
    if group_lengths:
        with_length = lambda *columns: (*columns, tf.size(tf.strings.split(columns[0])))
        dataset = dataset.map(with_length, num_parallel_calls=tf.data.AUTOTUNE)
        dataset = dataset.batch(batch_size * pool_batches).map(_grouped_by_length(batch_size)).unbatch()
    dataset = dataset.batch(batch_size)
    if map_fn is not None:
        dataset = dataset.map(map_fn, num_parallel_calls=tf.data.AUTOTUNE)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF  # Corpus shards
    return dataset.with_options(options).prefetch(tf.data.AUTOTUNE)
