"""``rnnkit demo --list`` and ``rnnkit demo NAME``: the application demos found, run and refused."""

from __future__ import annotations

import pytest

from rnnkit import cli, examples


def test_every_demo_module_has_a_description_and_main():
    found = examples.demos()
    for name, description in found.items():
        assert description, f"rnnkit/examples/{name}.py needs a docstring whose first line describes it"
        assert callable(examples.get(name))


def test_list_names_every_demo(capsys):
    assert cli.main(["demo", "--list"]) == 0
    out = capsys.readouterr().out
    assert "rnnkit demo " in out and "the article's program" in out
    for name, description in examples.demos().items():
        assert f"rnnkit demo {name}" in out and description in out


def test_unknown_demo_is_refused_with_the_names(capsys):
    assert cli.main(["demo", "no-such-demo"]) == 2
    err = capsys.readouterr().err
    assert "Unknown demo 'no-such-demo'" in err and "rnnkit demo --list" in err


def test_named_demo_gets_its_own_arguments(monkeypatch, tmp_path):
    """``rnnkit demo NAME ...`` hands everything after NAME to that demo's ``main``."""
    (tmp_path / "echo_args.py").write_text('"""Echo the arguments (a test demo)."""\n'
                                           "def main(argv=None):\n    return {'argv': argv}\n")
    monkeypatch.setattr(examples, "_HERE", tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    seen = {}
    monkeypatch.setattr(examples, "get", lambda name: (lambda argv: seen.setdefault(name, argv)))
    assert cli.main(["demo", "echo_args", "--quick", "--seed", "3"]) == 0
    assert seen == {"echo_args": ["--quick", "--seed", "3"]}
    assert examples.demos() == {"echo_args": "Echo the arguments (a test demo)."}


def test_missing_optional_dependency_names_the_extra():
    with pytest.raises(ImportError, match=r"pip install 'rnnkit\[datasets\]' \(or pip install no-such-package\)"):
        examples.require("no_such_module_for_rnnkit", "datasets", "no-such-package")
