"""Pins the package surface: `import m2rl_slime.data` does no heavy import and resolves names lazily."""

from __future__ import annotations

import subprocess
import sys


def test_import_is_light_and_lazy():
    code = (
        "import sys, m2rl_slime.data as d, m2rl_slime.data.cli, m2rl_slime.data.curriculum;"
        "heavy = [m for m in ('slime', 'torch', 'transformers', 'pyarrow') if m in sys.modules];"
        "assert not heavy, heavy;"
        "assert d.DataConfig.__module__ == 'm2rl_slime.data.config';"
        "assert 'MultiDomainDataSource' in d.__all__ and 'MultiDomainDataSource' in dir(d)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_unknown_attribute_is_an_attribute_error():
    import m2rl_slime.data as d

    try:
        d.NoSuchThing  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchThing" in str(exc)
    else:
        raise AssertionError("expected AttributeError")
