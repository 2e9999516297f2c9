"""What a user hands back is verified before a resume (issue 29 item 2): an interrupted run's backup,
best checkpoint, history, config and trained weights, and a grid's ledger. A damaged one is one line naming
the file and what is wrong and what to do, exit 2, the damaged state left as it was; `--overwrite` starts
again. Also: a failed run keeps only what its resume reads (item 3)."""
import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest
import yaml

from conftest import repo_env, toy_rows, write_csv
from tfclf import faults, grid, run, rundir
from tfclf.studies import study
from tfclf.training import checkpoints

ARGS = ["--encoder", "bow", "--epochs", "2", "--batch-size", "8", "--embedding-dim", "8", "--vocab-size", "100",
        "--lr", "0.02", "--skip-export"]


def _interrupt_at(point):
    real = faults.reached

    def reached(name):
        real(name)
        if name == point:
            raise KeyboardInterrupt
    return reached


@pytest.fixture(scope="session")
def interrupted(tmp_path_factory):
    """(data, {point: <out>.partial of a run interrupted there}): "epoch_mid" (an epoch backup, the best
    checkpoint, the history) and "trained" (the trained weights); built once for both xdist workers."""
    from conftest import built_once

    def build(root):
        data = write_csv(root / "toy.csv", toy_rows(40))
        for point in ("epoch_mid", "trained"):
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(faults, "reached", _interrupt_at(point))
                assert run.main(["--data", data, "--out", str(root / point), *ARGS]) == 130
        return {"data": data, "states": {point: str(root / f"{point}.partial") for point in ("epoch_mid", "trained")}}
    built = built_once(tmp_path_factory, "interrupted_runs", build)
    return built["data"], {point: pathlib.Path(path) for point, path in built["states"].items()}


def _truncate(path):
    os.truncate(path, os.path.getsize(path) // 2)


def _flip(path):
    content = bytearray(path.read_bytes())
    content[len(content) // 2] ^= 0xFF
    path.write_bytes(bytes(content))


BACKUP_DATA = "backup/chief/ckpt-1.data-00000-of-00001"
CASES = {  # (state, file, damage, what the line says about it)
    "backup cut short": ("epoch_mid", BACKUP_DATA, _truncate, "damaged (cut short)"),
    "backup byte flipped": ("epoch_mid", BACKUP_DATA, _flip, "checksum mismatch"),
    "backup index missing": ("epoch_mid", "backup/chief/ckpt-1.index", os.remove, "missing"),
    "backup state cut": ("epoch_mid", "backup/chief/checkpoint", lambda p: os.truncate(p, 10), "damaged"),
    "best weights cut short": ("epoch_mid", "checkpoints/best/weights.data-00000-of-00001", _truncate, "cut short"),
    "history cut short": ("epoch_mid", "history.json", _truncate, "damaged (not valid JSON"),
    "config cut short": ("epoch_mid", "config.json", _truncate, "damaged (not a JSON run config)"),
    "trained weights flipped": ("trained", "trained/weights.data-00000-of-00001", _flip, "checksum mismatch"),
    "trained index missing": ("trained", "trained/weights.index", os.remove, "missing"),
    "trained record cut": ("trained", "trained/fit.json", _truncate, "damaged (not valid JSON"),
}


def _damaged(interrupted, tmp_path, case):
    state, name, damage, _ = CASES[case]
    staging = tmp_path / "run.partial"
    shutil.copytree(interrupted[1][state], staging)
    damage(staging / name)
    return staging


def _snapshot(directory):
    return {str(path.relative_to(directory)): path.read_bytes() for path in directory.rglob("*") if path.is_file()}


@pytest.mark.parametrize("case", CASES)
def test_a_damaged_run_is_one_line_naming_the_file_and_kept_as_it_was(interrupted, case, tmp_path, capsys):
    staging = _damaged(interrupted, tmp_path, case)
    before = _snapshot(staging)
    code = run.main(["--data", interrupted[0], "--out", str(tmp_path / "run"), *ARGS])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1, lines
    _, name, _, what = CASES[case]
    assert lines[0].startswith(f"tfclf: error: --out {tmp_path}/run: the interrupted run in {staging} cannot "
                               f"resume: {staging}/{name}: ")
    assert what in lines[0]
    assert lines[0].endswith(f"pass --overwrite to discard it and start again, or delete {staging}")
    assert _snapshot(staging) == before and not (tmp_path / "run").exists() and not (tmp_path / "run.lock").exists()


@pytest.mark.slow
def test_overwrite_discards_a_damaged_run_and_trains_again(interrupted, tmp_path, capsys):
    staging = _damaged(interrupted, tmp_path, "backup cut short")
    assert run.main(["--data", interrupted[0], "--out", str(tmp_path / "run"), *ARGS, "--overwrite"]) == 0
    discarded = (f"--overwrite: discarding the interrupted run in {staging} ({staging}/{BACKUP_DATA}: damaged "
                 "(cut short))")
    assert discarded in capsys.readouterr().out
    history = json.loads((tmp_path / "run" / "metrics.json").read_text())["history"]
    assert len(history["loss"]) == 2 and not staging.exists()


@pytest.mark.slow
def test_an_undamaged_run_still_resumes(interrupted, tmp_path, capsys):
    """The checks pass a whole backup (what test_faults resumes after real kills)."""
    shutil.copytree(interrupted[1]["epoch_mid"], tmp_path / "run.partial")
    assert run.main(["--data", interrupted[0], "--out", str(tmp_path / "run"), *ARGS]) == 0
    assert "training resumes from its last backup" in capsys.readouterr().out


def test_an_interrupted_run_keeps_only_what_its_resume_reads(interrupted, tmp_path):
    """After Ctrl-C (or a full disk) the `.partial` holds the resume state only: no half-written report or plot,
    no `.tmp`; the checkpoint files TensorFlow left unfinished are gone (checked with fakes of them)."""
    staging = interrupted[1]["trained"]
    assert set(os.listdir(staging)) <= set(checkpoints.RESUME_STATE) and "trained" in os.listdir(staging)
    copy = tmp_path / "run.partial"
    shutil.copytree(interrupted[1]["epoch_mid"], copy)
    for leftover in ("backup/chief/checkpoint.tmp3f2a", "backup/chief/ckpt-2.index", "backup/chief/ckpt-2_temp/part",
                     "report.txt", "predictions.csv.tmp", ".trained-tmp/fit.json", "checkpoints/.best-tmp/best.json"):
        (copy / leftover).parent.mkdir(parents=True, exist_ok=True)
        (copy / leftover).write_text("half")
    kept = _snapshot(interrupted[1]["epoch_mid"])
    rundir.keep_resumable(str(copy))
    assert _snapshot(copy) == kept


@pytest.mark.slow
def test_the_real_command_prints_no_traceback(interrupted, tmp_path):
    staging = _damaged(interrupted, tmp_path, "backup byte flipped")
    result = subprocess.run([sys.executable, "-m", "tfclf.run", "--data", interrupted[0], "--out",
                             str(tmp_path / "run"), *ARGS], capture_output=True, text=True, env=repo_env())
    assert result.returncode == 2 and "Traceback" not in result.stderr + result.stdout
    assert result.stderr.strip().splitlines()[-1].startswith(f"tfclf: error: --out {tmp_path}/run: the interrupted "
                                                             f"run in {staging} cannot resume: {staging}/{BACKUP_DATA}")


# --- a grid's ledger ---

def _grid(tmp_path, lines: list):
    """A one-trial study and a ledger of `lines` (its trial's real entry is the first)."""
    spec = {"base": {"data": write_csv(tmp_path / "toy.csv", toy_rows(40)), "encoder": "bow", "epochs": 1},
            "grid": {"lr": [0.02]}, "seeds": [1]}
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(spec))
    out = tmp_path / "grid"
    out.mkdir()
    [trial] = study.expand(study.parse(spec, "study.yaml"), str(out))
    ledger = study.Ledger(str(out / "ledger.jsonl"))
    ledger.append(study.entry_from_failure(trial, "an earlier failure"))
    good = (out / "ledger.jsonl").read_text()
    (out / "ledger.jsonl").write_text("".join(line(good) for line in lines))
    return str(tmp_path / "study.yaml"), out


LEDGER_CASES = {  # ledger lines (from the one good line) -> what the error says about line 1 or 2
    "byte changed": ([lambda good: good.replace("an earlier", "an eerlier")], "line 1: its content changed since "
                                                                              "the grid wrote it (checksum mismatch)"),
    "cut in the middle": ([lambda good: good[:40] + "\n", lambda good: good], "line 1: damaged (not a JSON line)"),
    "not an entry": ([lambda good: good, lambda good: "[1, 2]\n"],
                     "line 2: not a ledger entry (no trial digest or status)"),
}


@pytest.mark.parametrize("case", LEDGER_CASES)
def test_a_damaged_ledger_is_one_line_before_any_trial(case, tmp_path, capsys):
    lines, what = LEDGER_CASES[case]
    spec, out = _grid(tmp_path, lines)
    before = (out / "ledger.jsonl").read_text()
    assert grid.main([spec, "--out", str(out), "--retry-failed"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"tfclf: error: {out}/ledger.jsonl {what}; delete that line (its trial runs again) or the grid "
                   "directory (all trials run again), then run the same command"]
    assert (out / "ledger.jsonl").read_text() == before and sorted(os.listdir(out)) == ["ledger.jsonl"]


def test_a_ledger_line_cut_by_a_kill_is_removed_and_the_rest_kept(tmp_path, capsys):
    _, out = _grid(tmp_path, [lambda good: good, lambda good: good[:30]])
    ledger = study.Ledger(str(out / "ledger.jsonl"))
    assert len(ledger.read()) == 1
    ledger.verify()
    assert "removed its last line, cut short by an interrupted write" in capsys.readouterr().out
    assert (out / "ledger.jsonl").read_text().count("\n") == 1 and len(ledger.read()) == 1
