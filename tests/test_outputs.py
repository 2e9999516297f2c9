"""Output locations are checked as a set before any work (rundir.check_locations, issue 29 item 1): no output
equal to or inside another, names confined to their parent, exports and inputs never written into, and
`predict --output` never replacing a file unless --overwrite. One line, exit 2, nothing created."""
import os

import pytest

from conftest import toy_rows, write_csv, write_folders
from tfclf import evaluate, grid, predict, run


def _one_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tfclf: error: "), lines
    return lines[0]


def _fake_export(path) -> str:
    """A directory that looks like an export version (saved_model.pb): the checks come before any load."""
    os.makedirs(path)
    open(os.path.join(path, "saved_model.pb"), "wb").close()
    return str(path)


RUN_CASES = {  # flags after --data <toy csv> --out <tmp>/run, and a fragment of the one line
    "export dir is the run dir": (lambda tmp: ["--export-dir", str(tmp / "run")], "the same place as --out"),
    "export dir inside the run dir": (lambda tmp: ["--export-dir", str(tmp / "run" / "models")],
                                      "inside --out " + "{tmp}/run (the run directory); choose an --export-dir "
                                                         "outside --out"),
    "export root is the run dir": (lambda tmp: ["--export-dir", str(tmp)],
                                   "--export-dir/--export-name {tmp}/run: the same place as --out {tmp}/run"),
    "export name climbs out": (lambda tmp: ["--export-name", "../../x"], "--export-name '../../x': a name, not a path"),
    "export name absolute": (lambda tmp: ["--export-name", "/tmp/x"], "--export-name '/tmp/x': a name, not a path"),
    "export name with separator": (lambda tmp: ["--export-name", "a/b"], "give a plain name"),
    "export name dot dot": (lambda tmp: ["--export-name", ".."], "give a plain name"),
    "out inside an export": (lambda tmp: ["--out", str(tmp / "models" / "m" / "1" / "run")],
                             "inside the exported model {tmp}/models/m/1, which is never written into"),
}


@pytest.mark.parametrize("case", RUN_CASES)
def test_run_outputs_that_collide_or_escape_are_refused_before_any_work(case, tmp_path, capsys):
    make, fragment = RUN_CASES[case]
    _fake_export(tmp_path / "models" / "m" / "1")
    data = write_csv(tmp_path / "t.csv", toy_rows(40))
    before = sorted(os.listdir(tmp_path))
    code = run.main(["--data", data, "--out", str(tmp_path / "run"), "--encoder", "bow", "--epochs", "1",
                     "--export-dir", str(tmp_path / "models"), *make(tmp_path)])
    line = _one_line(capsys)
    assert code == 2 and fragment.format(tmp=tmp_path) in line, line
    assert sorted(os.listdir(tmp_path)) == before  # no run, .partial, .lock or export directory
    assert os.listdir(tmp_path / "models") == ["m"]


def test_run_dir_inside_its_class_folders_is_refused(tmp_path, capsys):
    data = write_folders(tmp_path / "folders", toy_rows(40))
    assert run.main(["--data", data, "--out", str(tmp_path / "folders" / "run"), "--encoder", "bow",
                     "--skip-export"]) == 2
    assert f"--out {tmp_path}/folders/run: is inside --data {tmp_path}/folders, which is read" in _one_line(capsys)
    assert not (tmp_path / "folders" / "run").exists() and not (tmp_path / "folders" / "run.lock").exists()


def test_evaluate_out_inside_an_export_is_refused(tmp_path, capsys):
    model = _fake_export(tmp_path / "m" / "1")
    data = write_csv(tmp_path / "t.csv", toy_rows(10))
    assert evaluate.main(["--model", model, "--data", data, "--out", os.path.join(model, "eval")]) == 2
    assert f"--out {model}/eval: inside the exported model {model}, which is never written into" in _one_line(capsys)
    assert sorted(os.listdir(model)) == ["saved_model.pb"]


def test_predict_never_replaces_a_file_unless_told(tmp_path, capsys):
    model = _fake_export(tmp_path / "m" / "1")
    source = write_csv(tmp_path / "in.csv", toy_rows(4))
    kept = tmp_path / "scored.csv"
    kept.write_text("precious\n")
    assert predict.main(["--model", model, "--input", source, "--output", str(kept)]) == 2
    assert f"--output {kept}: exists; choose another file or pass --overwrite to replace it" in _one_line(capsys)
    assert kept.read_text() == "precious\n"
    for flags in ([], ["--overwrite"]):  # its own input: never, even with --overwrite
        assert predict.main(["--model", model, "--input", source, "--output", source, *flags]) == 2
        assert f"--output {source}: is the --input file, which would be lost" in _one_line(capsys)
    assert predict.main(["--model", model, "--input", source, "--output", os.path.join(model, "o.csv")]) == 2
    assert "inside the exported model" in _one_line(capsys)


def test_grid_export_dir_inside_the_grid_dir_is_refused(tmp_path, capsys):
    spec = tmp_path / "s.yaml"
    spec.write_text(f"base: {{data: {write_csv(tmp_path / 't.csv', toy_rows(40))}, encoder: bow, skip_export: false, "
                    f"export_dir: {tmp_path / 'g' / 'models'}}}\ngrid: {{lr: [0.01]}}\n")
    assert grid.main([str(spec), "--out", str(tmp_path / "g")]) == 2
    assert f"--export-dir {tmp_path}/g/models: inside grid --out {tmp_path}/g" in _one_line(capsys)
    assert not (tmp_path / "g").exists()


@pytest.mark.parametrize("where", ["same", "inside", "holds"])
def test_import_hf_never_replaces_its_source(where, tmp_path, capsys):
    from tfclf import import_hf
    source = tmp_path / "ckpt"
    source.mkdir()
    (source / "config.json").write_text("{}")
    out = {"same": source, "inside": source / "hub", "holds": tmp_path}[where]
    assert import_hf.main([str(source), "--out", str(out)]) == 2
    assert f"--out {out}: " in _one_line(capsys)
    assert (source / "config.json").read_text() == "{}"
