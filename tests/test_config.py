import dataclasses

import pytest

from tfclf import config as config_lib
from tfclf import run


def test_flags_override_file_and_file_overrides_defaults(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("epochs: 4\nbatch_size: 16\ntrain: {lr: 0.001}\n")
    config = run.config_from_args(["--config", str(path), "--batch-size", "8", "--clean", "lowercase,html"])
    assert (config.train.epochs, config.train.batch_size, config.train.lr) == (4, 8, 0.001)
    assert config.data.clean == ("lowercase", "html")
    assert config.model.encoder == config_lib.ModelConfig().encoder


def test_config_round_trips_through_json(tmp_path):
    config = config_lib.from_flat({"epochs": 2, "text_column": "title,body", "drop_invalid": True})
    config_lib.save(config, tmp_path / "config.json")
    assert config_lib.load(tmp_path / "config.json") == config
    assert config.data.text_column == ("title", "body")


def test_config_is_frozen():
    config = config_lib.from_flat({})
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.train.lr = 1.0


@pytest.mark.parametrize("values, message", [
    ({"optimiser": "adam"}, "unknown config key 'optimiser'; valid keys:"),
    ({"encoder": "gpt9"}, "--encoder 'gpt9' is unknown; `tfclf list encoders` shows all 41"),
    ({"encoder": "minilm"}, "--encoder 'minilm' is unknown; did you mean minilm_l6"),
    ({"opt": "adagrad"}, "choose one of: adamw, adam, sgd, rmsprop"),
    ({"clean": "lowercase,shout"}, "--clean 'shout' is unknown"),
    ({"data": "no/such/file.csv"}, "neither a dataset name"),
    ({"batch_size": "eight"}, "--batch-size 'eight': cannot read it as int"),
    ({"val_fraction": 0.9}, "--val-fraction 0.9 is out of range"),
])
def test_bad_config_values_name_the_key(values, message):
    with pytest.raises(ValueError, match=None) as error:
        config_lib.from_flat(values)
    assert message in str(error.value)


def test_digest_ignores_out_but_not_hyperparameters():
    a = config_lib.from_flat({"out": "x"})
    assert a.digest() == config_lib.from_flat({"out": "y"}).digest()
    assert a.digest() != config_lib.from_flat({"lr": 0.5}).digest()


def test_help_states_each_default_once(capsys):
    with pytest.raises(SystemExit):
        run.build_parser().parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    for flag_help in ("--text-column TEXT_COLUMN text column(s), comma-separated; several are joined with a space "
                      "(default: the dataset's, else 'text') --label-column",
                      "--lr LR peak learning rate (0: the encoder's default) --encoder-lr"):
        assert flag_help in text
    options = text.split("options:")[1].split(" --")
    assert "(default: '')" not in text and all(option.count("(default") <= 1 for option in options)


def test_help_lists_table_choices(capsys):
    with pytest.raises(SystemExit):
        run.build_parser().parse_args(["--help"])
    text = capsys.readouterr().out
    for word in ("sms_spam", "imdb", "adamw", "rmsprop", "focal", "lemmatize", "bow"):
        assert word in text
