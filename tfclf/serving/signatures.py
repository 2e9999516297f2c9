"""The serving signatures an export saves: raw strings in, the task's outputs out.

`serving_default(text: string[batch])` returns, for a single-label task (Serving), `probabilities`
float32[batch, classes], `class_id` int32[batch] and `class_name` string[batch]; for a multi-label task
(MultiLabelServing), `probabilities` float32[batch, labels], `label_mask` int32[batch, labels] and
`label_names` string[batch]. The calibration temperature and the thresholds are constants in the graph, so TF
Serving and plain `tf.saved_model.load` serve what the run evaluated. Which one an export saves is the task's
choice (tasks/*: serving_module).
"""
from tfclf._backend import tf

TEXT = tf.TensorSpec([None], tf.string, name="text")


class Signature(tf.Module):
    """A strings -> logits model, its class names and the calibration temperature that divides its logits."""

    def __init__(self, model, class_names, temperature: float = 1.0):
        super().__init__()
        self.model = model
        self.class_names = tf.constant(list(class_names))
        self.temperature = tf.constant(float(temperature), tf.float32)

    def scaled_logits(self, text):
        return tf.cast(self.model(text, training=False), tf.float32) / self.temperature


class Serving(Signature):
    """Softmax probabilities of the scaled logits; `class_id` is the argmax, or with a binary threshold the
    positive class when its probability is >= the threshold."""

    def __init__(self, model, class_names, temperature: float = 1.0, threshold: float = None,
                 positive_id: int = 1):
        super().__init__(model, class_names, temperature)
        self.threshold = None if threshold is None else tf.constant(float(threshold), tf.float32)
        self.positive_id = int(positive_id)

    @classmethod
    def from_record(cls, model, class_names, decision: dict) -> "Serving":
        """The signature of a decision record ({"temperature", "threshold", "positive_class"}, as
        calibration.json holds it; {}: argmax at temperature 1)."""
        positive = decision.get("positive_class")
        return cls(model, class_names, decision.get("temperature", 1.0), decision.get("threshold"),
                   list(class_names).index(positive) if positive else 1)

    @tf.function(input_signature=[TEXT])
    def serve(self, text):
        probabilities = tf.nn.softmax(self.scaled_logits(text), axis=-1)
        if self.threshold is None:
            class_id = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
        else:
            class_id = tf.where(probabilities[:, self.positive_id] >= self.threshold,
                                self.positive_id, 1 - self.positive_id)
        return {"probabilities": probabilities, "class_id": class_id,
                "class_name": tf.gather(self.class_names, class_id)}


class MultiLabelServing(Signature):
    """Per-label sigmoid probabilities of the scaled logits; `label_mask` is p >= the label's threshold and
    `label_names` the predicted set joined by `separator` ("" for an empty set)."""

    def __init__(self, model, class_names, temperature: float, thresholds, separator: str):
        super().__init__(model, class_names, temperature)
        self.thresholds = tf.constant([float(value) for value in thresholds], tf.float32)
        self.separator = separator

    @classmethod
    def from_record(cls, model, class_names, decision: dict) -> "MultiLabelServing":
        """The signature of a multi-label decision record (per-label thresholds, the label separator)."""
        return cls(model, class_names, decision.get("temperature", 1.0),
                   [decision["thresholds"][name] for name in class_names], decision.get("label_separator") or "|")

    @tf.function(input_signature=[TEXT])
    def serve(self, text):
        probabilities = tf.sigmoid(self.scaled_logits(text))
        label_mask = tf.cast(probabilities >= self.thresholds, tf.int32)
        names = tf.broadcast_to(self.class_names, tf.shape(label_mask))
        kept = tf.ragged.boolean_mask(names, label_mask > 0)  # each text's chosen labels, in label order
        return {"probabilities": probabilities, "label_mask": label_mask,
                "label_names": tf.strings.reduce_join(kept, axis=1, separator=self.separator)}
