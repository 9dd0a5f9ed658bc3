"""cxlab._check: the one configuration-key checker and its did-you-mean."""

import difflib

import pytest

from cxlab._check import (
    ANY,
    ConfigError,
    UnknownKey,
    UnknownKeysError,
    check_keys,
    nearest,
    unknown_keys,
)

SCHEMA = {
    "plates": {"left": 0, "right": 0},
    "tasks": {ANY: {"functions": 0, "side": 0}},
    "seed": 0,
}


def test_every_unknown_key_is_named_at_once_with_file_nearest_key_and_allowed_keys(tmp_path):
    doc = {"plate": {}, "tasks": {"cmj": {"fuctions": []}, "hop": {}}, "plates": {"lft": 1}}
    with pytest.raises(UnknownKeysError) as e:
        check_keys(doc, SCHEMA, file=tmp_path / "lab.toml", fix="see docs/features.md")
    msg = str(e.value)
    assert msg.startswith("lab.toml: has unknown key(s) ")
    assert str(tmp_path) not in msg  # the file's name, never its absolute path
    assert "'plate' (did you mean 'plates'?)" in msg
    assert "'tasks.cmj.fuctions' (did you mean 'tasks.cmj.functions'?)" in msg
    assert "'plates.lft' (did you mean 'plates.left'?)" in msg
    assert "[top level] plates, tasks, seed" in msg
    assert "[tasks.cmj] functions, side" in msg and "[plates] left, right" in msg
    assert msg.endswith("; see docs/features.md") and "\n" not in msg
    assert "hop" not in msg  # any task label is allowed
    assert [u.key for u in e.value.unknown] == ["plate", "tasks.cmj.fuctions", "plates.lft"]
    assert isinstance(e.value, ConfigError)  # the CLI's one-line config error


def test_a_table_given_a_value_is_refused():
    with pytest.raises(UnknownKeysError, match=r"config: has key\(s\) that must be tables "):
        check_keys({"plates": 2}, SCHEMA)
    bad = unknown_keys({"tasks": {"cmj": "cmj"}}, SCHEMA)
    assert bad == [UnknownKey("tasks.cmj", "not_a_table", None, ("<name>",))]
    assert bad[0].phrase() == "'tasks.cmj' (must be a table)"


def test_allowed_keys_pass_and_leaves_are_not_inspected():
    check_keys({"seed": {"anything": 1}, "tasks": {"x": {"side": "left"}}}, SCHEMA)
    check_keys({"a": 1}, ("a", "b"), where="model")
    assert unknown_keys({}, ()) == []


def test_one_line_per_key_for_collecting_validators():
    bad = unknown_keys({"tme": "week", "zzzz": 1}, ("time", "arm"), where="model")
    assert [str(b) for b in bad] == [
        "model.tme: is not a known key; did you mean 'time'?",
        "model.zzzz: is not a known key; allowed keys: time, arm",
    ]
    assert bad[1].phrase() == "'model.zzzz'"


@pytest.mark.parametrize(
    "word,choices",
    [
        ("marker_cutof_hz", ["marker_cutoff_hz", "cop_cutoff_hz", "max_gap_s"]),
        ("platess", ["plates", "tasks", "events"]),
        ("agee", ["age_years", "sex", "baseline"]),
        ("qqqq", ["left", "right"]),
    ],
)
def test_nearest_is_difflibs_closest_match(word, choices):
    # reference: difflib.get_close_matches with its documented defaults (n=1, cutoff 0.6)
    ref = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    assert nearest(word, choices) == (ref[0] if ref else None)


def test_difflib_is_used_only_by_the_one_checker():
    from pathlib import Path

    import cxlab

    src = Path(cxlab.__file__).parent
    users = sorted(
        p.relative_to(src).as_posix() for p in src.rglob("*.py") if "difflib" in p.read_text()
    )
    assert users == ["_check.py"]


LOADERS = {
    "features.toml": ("cxlab.features.config:read_config", "[plate]\nleft = 2\n", "plates"),
    "emg.toml": ("cxlab.features.config:read_config", "[emg.filter]\nx = 1\n", "filters"),
    "instrument spec": ("cxlab.instruments:read_spec", 'drop_column = ["x"]\n', "drop_columns"),
    "instrument": (
        "cxlab.instruments:read_instruments",
        '[[instrument]]\nname = "x"\ntitel = "X"\n',
        "title",
    ),
    "screen rules": ("cxlab.screen.rules:read_rules", "[rules.r1]\ntreshold = 3\n", "threshold"),
    "csv mapping": ("cxlab.io.csv:read_mapping", "colums = {}\n", "columns"),
}


@pytest.mark.parametrize("kind", sorted(LOADERS))
def test_every_config_loader_refuses_a_misspelt_key_through_check_keys(tmp_path, kind):
    import importlib

    target, text, near = LOADERS[kind]
    module, name = target.split(":")
    p = tmp_path / "lab.toml"
    p.write_text(text)
    with pytest.raises(UnknownKeysError) as e:
        getattr(importlib.import_module(module), name)(p)
    assert e.value.unknown[0].near == near
    assert str(e.value).startswith("lab.toml: has unknown key(s) ")


def test_experiment_spec_lists_unknown_keys_one_per_line(tmp_path):
    from cxlab.experiments.spec import read_spec

    p = tmp_path / "exp.toml"
    p.write_text('name = "x"\ntitel = "t"\n[model]\ntme = "week"\n')
    with pytest.raises(ConfigError) as e:
        read_spec(p)
    lines = str(e.value).splitlines()
    assert "  - titel: is not a known key; did you mean 'title'?" in lines
    assert "  - model.tme: is not a known key; did you mean 'time'?" in lines
