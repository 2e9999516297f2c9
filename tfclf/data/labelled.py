"""Reading a labelled file for an already trained model: its labels must be among the model's classes.

`tfclf.evaluate` reads the file through the model's task (tasks/*: read_labelled): single-label models take
`read_labels`, multi-label models `read_label_sets`.

    table = labelled.read_labels("new.csv", ("text",), "label", ["ham", "spam"])
"""
from tfclf.data import readers, splits as splits_lib


def read_labels(path: str, text_columns: tuple, label_column: str, class_names):
    """A labelled file's table with each label's id among the model's classes (column `label_id`)."""
    table, _ = readers.read(path, text_columns, label_column)
    table, _ = splits_lib.validate(table, path, drop_invalid=False, min_classes=1)
    unknown = sorted(set(table["label"]) - set(class_names))
    if unknown:
        raise ValueError(f"{path}: labels {unknown[:5]} are not among the model's classes "
                         f"{class_names}; check --label-column")
    index = {name: i for i, name in enumerate(class_names)}
    table["label_id"] = table["label"].map(index).astype("int32")
    return table


def read_label_sets(path: str, text_columns: tuple, label_column: str, class_names, separator: str,
                    columns: tuple):
    """A labelled file's table of label sets (column `labels`) for a multi-label model: the label column
    split at `separator`, JSONL lists, 0/1 `columns`, or one label per row (a set of one)."""
    table, _ = readers.read(path, text_columns, label_column, separator, tuple(columns))
    if "labels" not in table.columns:  # one label per row: each a set of one
        table["labels"] = [None if label is None or label != label else (str(label).strip(),)
                           for label in table["label"]]
    table, _ = splits_lib.validate_multi_label(table, path, drop_invalid=False)
    unknown = sorted({label for labels in table["labels"] for label in labels} - set(class_names))
    if unknown:
        raise ValueError(f"{path}: labels {unknown[:5]} are not among the model's labels {class_names[:10]}; "
                         "check --label-column / --label-separator / --label-columns")
    return table
