"""The run's figures: what each one marks (no pixels compared)."""

from tfclf.evaluation import plots

HISTORY = {"loss": [0.9, 0.5, 0.4], "val_loss": [0.8, 0.6, 0.7], "macro_f1": [0.5, 0.8, 0.9],
           "val_macro_f1": [0.6, 0.9, 0.85], "learning_rate": [0.01, 0.005, 0.0]}


def _best_epoch_lines(axis):
    return [line for line in axis.get_lines() if line.get_label().startswith("best epoch")]


def test_curves_show_the_monitored_metric_losses_and_learning_rate_with_the_selected_epoch_marked():
    figure = plots.curves_figure(HISTORY, "val_macro_f1", best_epoch=2)
    axes = figure.axes
    assert [axis.get_ylabel() for axis in axes] == ["macro_f1", "loss", "learning_rate"]
    assert "val_macro_f1" in axes[0].get_title()
    for axis in axes:
        [line] = _best_epoch_lines(axis)
        assert list(line.get_xdata()) == [2, 2] and line.get_label() == "best epoch 2"
        assert list(axis.get_xticks()) == [1, 2, 3]  # one tick per epoch, whole numbers
    labels = {line.get_label() for line in axes[0].get_lines()}
    assert {"train", "validation"} <= labels
    plots.plt.close(figure)


def test_curves_with_a_loss_monitor_have_no_separate_metric_panel_and_no_mark_without_a_best_epoch():
    figure = plots.curves_figure(HISTORY, "val_loss")
    assert [axis.get_ylabel() for axis in figure.axes] == ["loss", "learning_rate"]
    assert not any(_best_epoch_lines(axis) for axis in figure.axes)
    plots.plt.close(figure)


def test_the_reliability_legend_is_clear_of_the_bars_and_their_counts():
    """A poorly calibrated 3-class model fills the low-confidence bins on the left, where the legend used to be."""
    import numpy as np
    rng = np.random.default_rng(0)
    probabilities = rng.dirichlet([1.0, 1.0, 1.0], size=400)
    labels = rng.integers(0, 3, size=400)
    figure = plots.reliability_figure([("before", probabilities), ("after", probabilities)], labels)
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    for axis in figure.axes:
        legend = axis.get_legend().get_window_extent(renderer)
        plotted = [patch.get_window_extent(renderer) for patch in axis.patches] + \
            [text.get_window_extent(renderer) for text in axis.texts]  # the bars and the counts above them
        assert plotted and not any(legend.overlaps(box) for box in plotted)
        assert legend.y1 <= axis.get_window_extent(renderer).y0  # below the diagram
    plots.plt.close(figure)


def test_the_reliability_counts_are_clear_of_every_bar_and_gap():
    """The counts used to sit on the bars' tops, where the hatched gap of an under-confident bin covered them."""
    import numpy as np
    rng = np.random.default_rng(1)
    probabilities = rng.dirichlet([0.3, 0.3], size=500)  # confident and often wrong: tall gaps above low bars
    labels = rng.integers(0, 2, size=500)
    figure = plots.reliability_figure([("test", probabilities)], labels)
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    [axis] = figure.axes
    counts = [text for text in axis.texts]
    assert len(counts) == len(axis.containers[0]) > 3  # one count per filled bin
    assert sum(int(text.get_text()) for text in counts) == 500
    boxes = [patch.get_window_extent(renderer) for patch in axis.patches]
    for text in counts:
        box = text.get_window_extent(renderer)
        assert not any(box.overlaps(patch) for patch in boxes), text.get_text()
        assert box.y1 <= axis.get_window_extent(renderer).y1  # inside the frame, under the title
    plots.plt.close(figure)


def test_short_count_shortens_from_the_given_size():
    assert [plots.short_count(n) for n in (999, 12_345, 374_117, 1_753_810)] == ["999", "12345", "374k", "1.75M"]
    assert [plots.short_count(n, 1_000) for n in (999, 1_234, 12_345)] == ["999", "1.23k", "12.3k"]


def test_the_length_histogram_bins_hold_whole_lengths_alike_and_its_legend_covers_no_bar():
    """Uneven bins over whole-number lengths drew false spikes (some bins held two lengths, others one)."""
    import numpy as np
    lengths = np.random.default_rng(0).integers(1, 62, size=3000)  # about 49 texts at each length 1-61
    figure = plots.length_histogram_figure(lengths, 33, "words")
    figure.canvas.draw()
    [axis] = figure.axes
    bars = [patch for patch in axis.patches if patch.get_height() > 0]
    assert {patch.get_width() for patch in bars} == {1.0}  # one length per bin, each bin centred on it
    assert all(float(patch.get_x() + 0.5).is_integer() for patch in bars)
    assert max(patch.get_height() for patch in bars) < 2 * np.mean([patch.get_height() for patch in bars])
    renderer = figure.canvas.get_renderer()
    legend = axis.get_legend().get_window_extent(renderer)
    assert not any(legend.overlaps(patch.get_window_extent(renderer)) for patch in bars)
    assert "cap: 33 words" in [text.get_text() for text in axis.get_legend().get_texts()]
    plots.plt.close(figure)


def test_the_class_distribution_legend_covers_no_bar_or_count_and_multi_label_says_labels():
    import pandas as pd
    counts = pd.DataFrame({"train": [59, 760, 801, 786, 543, 573], "val": [13, 163, 172, 169, 116, 123],
                           "test": [13, 163, 171, 168, 116, 123]}, index=["A", "B", "C", "D", "E", "F"])
    figure = plots.class_distribution_figure(counts, "label", "a text counts under each of its labels")
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    [axis] = figure.axes
    legend = axis.get_legend()
    assert [text.get_text() for text in legend.get_texts()] == ["train", "validation", "test"]
    box = legend.get_window_extent(renderer)
    drawn = [patch.get_window_extent(renderer) for patch in axis.patches] + \
        [text.get_window_extent(renderer) for text in axis.texts] + [axis.title.get_window_extent(renderer)]
    assert not any(box.overlaps(other) for other in drawn)
    assert axis.get_xlabel() == "label" and "each of its labels" in axis.get_title()
    plots.plt.close(figure)
