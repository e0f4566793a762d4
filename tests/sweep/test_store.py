"""SWEEP_DIR: sweep.json and trials.jsonl, written so that a killed sweep resumes and nothing
is read twice or half (layerwise.sweep.store)."""

import json

import pytest

from layerwise.errors import FormatError, InputError
from layerwise.sweep import SweepDir, SweepSpec
from layerwise.sweep.store import PLOT_NAMES, SPEC_NAME, TRIALS_NAME


def record(trial, **extra):
    return {"trial": trial, "status": "done", "final_val_acc": 0.5 + trial / 100, "val_acc": [0.5], **extra}


@pytest.fixture
def spec():
    return SweepSpec(trials=6, epochs=2)


def test_prepare_a_fresh_directory_writes_the_spec(tmp_path, spec):
    sweep_dir = SweepDir(tmp_path / "a" / "b")
    assert sweep_dir.prepare(spec) is False
    assert json.loads((tmp_path / "a" / "b" / SPEC_NAME).read_text()) == spec.to_dict()
    assert sweep_dir.read_spec() == spec
    assert sweep_dir.results() == {}
    assert not sweep_dir.trials_path.exists()


def test_prepare_the_same_spec_again_resumes(tmp_path, spec):
    sweep_dir = SweepDir(tmp_path)
    sweep_dir.prepare(spec)
    sweep_dir.append(record(0))
    sweep_dir.append(record(3))
    again = SweepDir(tmp_path)
    assert again.prepare(SweepSpec(trials=6, epochs=2)) is True
    assert sorted(again.results()) == [0, 3]
    assert again.prepare(spec, force=True) is True  # --force replaces another sweep, not the same one
    assert sorted(again.results()) == [0, 3]


def test_prepare_refuses_another_spec_naming_the_differences(tmp_path, spec):
    sweep_dir = SweepDir(tmp_path)
    sweep_dir.prepare(spec)
    sweep_dir.append(record(1))
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(InputError) as info:
        sweep_dir.prepare(SweepSpec(trials=6, epochs=3, seed=1))
    message = str(info.value)
    assert "epochs: 2 -> 3" in message and "seed: 0 -> 1" in message and "--force" in message
    assert "trials" not in message.replace(TRIALS_NAME, "")  # only what changed is named
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_force_replaces_the_sweep_and_only_its_files(tmp_path, spec):
    sweep_dir = SweepDir(tmp_path)
    sweep_dir.prepare(spec)
    sweep_dir.append(record(0))
    for name in PLOT_NAMES:
        (tmp_path / name).write_bytes(b"\x89PNG old")
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "model.safetensors").write_bytes(b"weights")
    other = SweepSpec(trials=4, epochs=1)
    assert sweep_dir.prepare(other, force=True) is False
    assert sweep_dir.read_spec() == other
    assert sweep_dir.results() == {}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "runs", SPEC_NAME]
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert (tmp_path / "runs" / "model.safetensors").read_bytes() == b"weights"


def test_trials_without_a_spec_are_not_overwritten_without_force(tmp_path, spec):
    (tmp_path / TRIALS_NAME).write_text(json.dumps(record(0)) + "\n")
    with pytest.raises(InputError, match=r"no sweep\.json"):
        SweepDir(tmp_path).prepare(spec)
    assert (tmp_path / TRIALS_NAME).read_text() == json.dumps(record(0)) + "\n"
    assert not (tmp_path / SPEC_NAME).exists()
    assert SweepDir(tmp_path).prepare(spec, force=True) is False
    assert SweepDir(tmp_path).results() == {}


def test_out_that_is_a_file_is_refused(tmp_path, spec):
    (tmp_path / "S").write_text("not a directory")
    with pytest.raises(InputError, match="not a directory"):
        SweepDir(tmp_path / "S").prepare(spec)


def test_a_corrupt_spec_is_a_format_error(tmp_path, spec):
    (tmp_path / SPEC_NAME).write_text('{"trials": ')
    with pytest.raises(FormatError, match=SPEC_NAME):
        SweepDir(tmp_path).prepare(spec)


def test_append_writes_whole_lines(tmp_path, spec):
    sweep_dir = SweepDir(tmp_path)
    sweep_dir.prepare(spec)
    records = [record(i, config={"lr": 10.0 ** -i, "hidden": None}) for i in range(4)]
    for r in records:
        sweep_dir.append(r)
    data = sweep_dir.trials_path.read_bytes()
    assert data.endswith(b"\n") and data.count(b"\n") == 4
    assert [json.loads(line) for line in data.splitlines()] == records
    assert sweep_dir.results() == {i: r for i, r in enumerate(records)}


def test_append_refuses_what_json_cannot_hold(tmp_path, spec):
    sweep_dir = SweepDir(tmp_path)
    sweep_dir.prepare(spec)
    sweep_dir.append(record(0))
    with pytest.raises(ValueError):
        sweep_dir.append(record(1, final_val_acc=float("nan")))
    assert sweep_dir.trials_path.read_bytes().count(b"\n") == 1  # and nothing half-written
    assert list(sweep_dir.results()) == [0]


def torn_file(sweep_dir):
    """Two whole records and the first half of a third, as a killed writer could leave it."""
    whole = b"".join(json.dumps(record(i)).encode() + b"\n" for i in (0, 1))
    sweep_dir.trials_path.write_bytes(whole + json.dumps(record(2)).encode()[:20])
    return whole


def test_results_skip_a_torn_last_line(tmp_path, spec):
    sweep_dir = SweepDir(tmp_path)
    sweep_dir.prepare(spec)
    torn_file(sweep_dir)
    assert sorted(sweep_dir.results()) == [0, 1]


def test_prepare_drops_a_torn_last_line_so_appends_start_whole(tmp_path, spec):
    sweep_dir = SweepDir(tmp_path)
    sweep_dir.prepare(spec)
    whole = torn_file(sweep_dir)
    assert sweep_dir.prepare(spec) is True
    assert sweep_dir.trials_path.read_bytes() == whole
    sweep_dir.append(record(2))
    assert sorted(sweep_dir.results()) == [0, 1, 2]
    assert all(json.loads(line) for line in sweep_dir.trials_path.read_bytes().splitlines())


def test_a_torn_only_line_is_dropped_too(tmp_path, spec):
    sweep_dir = SweepDir(tmp_path)
    sweep_dir.prepare(spec)
    sweep_dir.trials_path.write_bytes(b'{"trial": 0, "sta')
    assert sweep_dir.results() == {}
    assert sweep_dir.prepare(spec) is True
    assert sweep_dir.trials_path.read_bytes() == b""


def test_a_corrupt_middle_line_is_a_format_error_naming_it(tmp_path, spec):
    sweep_dir = SweepDir(tmp_path)
    sweep_dir.prepare(spec)
    lines = [json.dumps(record(0)), '{"trial": 1, "stat', json.dumps(record(2))]
    sweep_dir.trials_path.write_text("\n".join(lines) + "\n")
    with pytest.raises(FormatError, match=rf"{TRIALS_NAME}, line 2: not a JSON record"):
        sweep_dir.results()


@pytest.mark.parametrize("line", ['["trial", 1]', '{"trial": "one"}', '{"status": "done"}', "3"])
def test_a_line_that_is_not_a_trial_record_is_a_format_error(tmp_path, spec, line):
    sweep_dir = SweepDir(tmp_path)
    sweep_dir.prepare(spec)
    sweep_dir.trials_path.write_text(json.dumps(record(0)) + "\n" + line + "\n")
    with pytest.raises(FormatError, match="line 2: not a trial record"):
        sweep_dir.results()


def test_a_trial_recorded_twice_is_read_once_as_its_first_record(tmp_path, spec):
    sweep_dir = SweepDir(tmp_path)
    sweep_dir.prepare(spec)
    first, second = record(1, worker="a:1"), record(1, worker="b:2")
    for r in (record(0), first, second, record(2)):
        sweep_dir.append(r)
    results = sweep_dir.results()
    assert sorted(results) == [0, 1, 2]
    assert results[1] == first


def test_blank_lines_are_ignored(tmp_path, spec):
    sweep_dir = SweepDir(tmp_path)
    sweep_dir.prepare(spec)
    sweep_dir.trials_path.write_text("\n" + json.dumps(record(0)) + "\n\n" + json.dumps(record(1)) + "\n")
    assert sorted(sweep_dir.results()) == [0, 1]
