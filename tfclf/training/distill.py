"""The teacher of knowledge distillation: an exported tfclf model scores the student's texts once,
before training, and its probabilities travel with the labels (see losses.Distillation).

Scoring once instead of running the teacher inside every training step costs one inference pass
over the data, however many epochs the student trains, and lets any model family teach any other.
"""
import numpy as np

from tfclf.serving import export, exported


def resolve(path: str) -> str:
    """--teacher's SavedModel directory: export.resolve (a run directory, a model root or a version)."""
    return export.resolve(path, "--teacher")


def verify(path: str) -> None:
    """A ValueError naming the damaged file of --teacher's export (export.verify), before a run directory exists."""
    export.verify(resolve(path))


def teacher_probabilities(path: str, texts, class_names, batch_size: int = 256) -> np.ndarray:
    """[len(texts), len(class_names)] probabilities of the teacher, columns in the student's class order."""
    teacher = exported.ExportedModel.open(path, "--teacher")
    teacher_classes = teacher.class_names
    if sorted(teacher_classes) != sorted(class_names):
        raise ValueError(f"--teacher {path}: its classes {teacher_classes} differ from the data's {list(class_names)}; "
                         "use a teacher trained on the same labels")
    result = teacher.predict(list(texts), batch_size)
    order = [teacher_classes.index(name) for name in class_names]
    return result["probabilities"][:, order].astype(np.float32)


def pack(label_ids, probabilities) -> np.ndarray:
    """[label, teacher probabilities...] rows: the y_true of losses.Distillation and pipeline.labels_of."""
    return np.column_stack([np.asarray(label_ids, dtype=np.float32), probabilities]).astype(np.float32)
