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
