"""The run's figures: what each one marks (no pixels compared)."""

from tfclf.evaluation import report

HISTORY = {"loss": [0.9, 0.5, 0.4], "val_loss": [0.8, 0.6, 0.7], "macro_f1": [0.5, 0.8, 0.9],
           "val_macro_f1": [0.6, 0.9, 0.85], "learning_rate": [0.01, 0.005, 0.0]}


def _best_epoch_lines(axis):
    return [line for line in axis.get_lines() if line.get_label().startswith("best epoch")]


def test_curves_show_the_monitored_metric_losses_and_learning_rate_with_the_selected_epoch_marked():
    figure = report.curves_figure(HISTORY, "val_macro_f1", best_epoch=2)
    axes = figure.axes
    assert [axis.get_ylabel() for axis in axes] == ["macro_f1", "loss", "learning_rate"]
    assert "val_macro_f1" in axes[0].get_title()
    for axis in axes:
        [line] = _best_epoch_lines(axis)
        assert list(line.get_xdata()) == [2, 2] and line.get_label() == "best epoch 2"
        assert list(axis.get_xticks()) == [1, 2, 3]  # one tick per epoch, whole numbers
    labels = {line.get_label() for line in axes[0].get_lines()}
    assert {"train", "validation"} <= labels
    report.plt.close(figure)


def test_curves_with_a_loss_monitor_have_no_separate_metric_panel_and_no_mark_without_a_best_epoch():
    figure = report.curves_figure(HISTORY, "val_loss")
    assert [axis.get_ylabel() for axis in figure.axes] == ["loss", "learning_rate"]
    assert not any(_best_epoch_lines(axis) for axis in figure.axes)
    report.plt.close(figure)
