"""Multi-label data, without TensorFlow: label sets read from a file, validated, split by iterative
stratification, and multi-hot targets.

Three input forms give each row a set of labels (a tuple of names; an empty set is a text with no tag):
  --label-separator "|"     one label column, "sports|politics"
  --label-columns a,b,c     one 0/1 column per label
  JSONL lists               {"text": ..., "label": ["sports", "politics"]}

    >>> import numpy as np
    >>> targets = np.array([[1, 0], [1, 0], [0, 1], [0, 1], [1, 1], [1, 1]] * 5, dtype=np.float32)
    >>> parts = iterative_split(targets, (0.6, 0.2, 0.2), seed=0)
    >>> [targets[part].sum(axis=0).astype(int).tolist() for part in parts]   # each label 60/20/20
    [[12, 12], [4, 4], [4, 4]]
"""
import numpy as np
import pandas as pd

DISPLAY_SEPARATOR = "|"  # how a set is shown (tables, predictions.csv) when the data gave no separator
MIN_PER_LABEL = 3  # one text each for train, validation and test


def has_lists(values: pd.Series) -> bool:
    """Whether a JSONL label column holds lists (then the task is multi-label)."""
    return bool(values.map(lambda value: isinstance(value, list)).any())


def _from_column(values: pd.Series, separator: str, column: str, path: str, rows) -> list:
    sets = []
    for value, row in zip(values, rows):
        if value is None or (isinstance(value, float) and value != value):
            sets.append(None)
        elif isinstance(value, list):
            if any(item is None or isinstance(item, (list, dict)) for item in value):
                raise ValueError(f"{path} {row}: label list {value!r} in column '{column}' holds a non-label; "
                                 "give a list of label strings")
            bad = [item for item in value if not str(item).strip() or DISPLAY_SEPARATOR in str(item)]
            if bad:  # an empty name is no label; one with the separator makes joined sets ambiguous
                raise ValueError(f"{path} {row}: label {bad[0]!r} in column '{column}' is empty or contains "
                                 f"'{DISPLAY_SEPARATOR}', which joins a label set; rename the label")
            sets.append(tuple(str(item).strip() for item in value if str(item).strip()))
        elif separator:
            sets.append(tuple(part.strip() for part in str(value).split(separator) if part.strip()))
        else:
            sets.append((str(value).strip(),) if str(value).strip() else None)
    return sets


def _from_columns(frame: pd.DataFrame, columns: tuple, path: str, rows) -> list:
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise ValueError(f"{path}: --label-columns names '{missing[0]}', which is not a column; available "
                         f"columns: {', '.join(str(c) for c in frame.columns)}")
    values = {}
    for column in columns:
        raw = frame[column]
        text = raw.map(lambda value: None if value is None or (isinstance(value, float) and value != value)
                       else str(value).strip().lower())
        flags = text.map({"1": 1, "0": 0, "1.0": 1, "0.0": 0, "true": 1, "false": 0})
        bad = text.notna() & flags.isna()
        if bad.any():
            first = int(np.flatnonzero(bad.to_numpy())[0])
            raise ValueError(f"{path} {rows[first]}: column '{column}' holds {raw.iloc[first]!r}; --label-columns "
                             "need 0 or 1 in every row")
        values[column] = flags
    table = pd.DataFrame(values)
    incomplete = table.isna().any(axis=1).to_numpy()
    return [None if incomplete[i] else tuple(c for c in columns if table[c].iloc[i] == 1) for i in range(len(table))]


def read_sets(frame: pd.DataFrame, label_column: str, separator: str, label_columns: tuple, path: str,
              rows) -> list:
    """Each row's label set (tuple of names), or None where the label is missing."""
    rows = list(rows)
    if label_columns:
        return _from_columns(frame, label_columns, path, rows)
    return _from_column(frame[label_column], separator, label_column, path, rows)


def display(labels, separator: str = "") -> str:
    """A label set as one string: 'politics|sports' ('' for the empty set)."""
    return (separator or DISPLAY_SEPARATOR).join(labels)


def vocabulary(sets, label_columns: tuple = ()) -> list:
    """Label names: the --label-columns order, else sorted."""
    if label_columns:
        return list(label_columns)
    return sorted({label for labels in sets for label in labels})


def targets(sets, label_names) -> np.ndarray:
    """Multi-hot float32 [texts, labels]; KeyError for a label outside `label_names`."""
    index = {name: i for i, name in enumerate(label_names)}
    matrix = np.zeros((len(sets), len(label_names)), dtype=np.float32)
    for row, labels in enumerate(sets):
        matrix[row, [index[label] for label in labels]] = 1.0
    return matrix


def iterative_split(targets: np.ndarray, fractions, seed: int) -> list:
    """Positions of each part (shares `fractions`), keeping every label's share in every part as far as possible:
    iterative stratification (Sechidis, Tsoumakas & Vlahavas 2011). The rarest label still to place goes
    first; each of its texts goes to the part that most lacks that label (ties: the part that most lacks
    texts, then at random); a placed text lowers what its part lacks for each of its labels. Texts without
    labels are placed last, by what each part lacks in texts. One change to the published algorithm: a part
    that has no text of the label yet goes first, so a label with at least one text per part reaches all."""
    rng = np.random.default_rng(seed)
    count = len(targets)
    fractions = np.asarray(fractions, dtype=np.float64)
    wanted = fractions * count                                   # texts each part lacks
    wanted_label = np.outer(fractions, targets.sum(axis=0))      # [parts, labels]
    part_of = np.full(count, -1)
    placed = np.zeros_like(wanted_label)                        # texts of each label placed in each part
    positive = targets > 0
    order = rng.permutation(count)                               # random order among equals
    while True:
        left = positive[part_of < 0].sum(axis=0)
        if not left.any():
            break
        label = int(np.argmin(np.where(left > 0, left, np.inf)))
        for text in order[(part_of[order] < 0) & positive[order, label]]:
            # tfclf's one change: a part without this label yet comes first, so a label with a text per part
            # reaches every part (the plain algorithm can leave a rare label out of a small part).
            lacking = np.where(placed[:, label] == 0, np.inf, wanted_label[:, label])
            best = np.flatnonzero(lacking == lacking.max())
            if len(best) > 1:
                best = best[wanted[best] == wanted[best].max()]
            part = int(rng.choice(best)) if len(best) > 1 else int(best[0])
            part_of[text] = part
            wanted[part] -= 1
            wanted_label[part] -= positive[text]
            placed[part] += positive[text]
    for text in order[part_of[order] < 0]:
        part = int(np.argmax(wanted))
        part_of[text] = part
        wanted[part] -= 1
    return [np.flatnonzero(part_of == part) for part in range(len(fractions))]
