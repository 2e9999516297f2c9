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
    assert {"data", "models", "training", "evaluation", "serving", "studies"} <= set(os.listdir(target / "tfclf"))
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
