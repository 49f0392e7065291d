"""MassGen's own tests of its BackgroundShellManager, run against supervisor.compat with only the import changed.

The file is not part of this repository: it is taken from a MassGen installation on the machine,
found in this order:
- `$MGSUP_MASSGEN_SHELL_TESTS`: the path of a `test_background_shell.py` (e.g. in a MassGen checkout);
- the MassGen environment next to `$MGSUP_MASSGEN` (a path to its `massgen` program), else the ones
  `scripts/install_massgen.py` builds under `$XDG_CACHE_HOME/mgsup/massgen-*` (default `~/.cache`);
- a `massgen` package importable here.
Without one the test is skipped. The copy goes to a temporary folder, its
`from massgen.filesystem_manager.background_shell import (...)` becomes an import from
`supervisor.compat` (names that mgsup does not provide, the Docker shell of newer versions, are left
out of it), and pytest runs it in a child process on a temporary state directory. Its Docker tests
(marked `docker`) are deselected: Docker shells are not part of the drop-in.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from supervisor import compat

REPO = Path(__file__).resolve().parents[2]
RELATIVE = Path("massgen") / "tests" / "test_background_shell.py"
IMPORT = re.compile(r"^from massgen\.filesystem_manager\.background_shell import \((?P<names>[^)]*)\)", re.M)


def massgen_suite() -> Path | None:
    explicit = os.environ.get("MGSUP_MASSGEN_SHELL_TESTS")
    if explicit:
        assert Path(explicit).is_file(), f"$MGSUP_MASSGEN_SHELL_TESTS names {explicit}, which is not a file"
        return Path(explicit)
    environments = []
    if os.environ.get("MGSUP_MASSGEN"):
        environments.append(Path(os.environ["MGSUP_MASSGEN"]).resolve().parents[1])
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mgsup"
    environments += sorted(cache.glob("massgen-*"), reverse=True)
    candidates = [site / RELATIVE for env in environments for site in env.glob("lib/python3*/site-packages")]
    spec = importlib.util.find_spec("massgen")
    if spec is not None and spec.submodule_search_locations:
        candidates += [Path(location).parent / RELATIVE for location in spec.submodule_search_locations]
    return next((path for path in candidates if path.is_file()), None)


def against_compat(source: str) -> str:
    """MassGen's test module with its import of the manager module pointed at supervisor.compat."""
    found = IMPORT.search(source)
    assert found, "MassGen's test file no longer imports from massgen.filesystem_manager.background_shell"
    names = [name.strip() for name in found["names"].split(",") if name.strip()]
    kept = [name for name in names if hasattr(compat, name)]
    assert {"BackgroundShellManager", "start_shell", "kill_shell"} <= set(kept), names
    replacement = "from supervisor.compat import (" + ", ".join(kept) + ")"
    return source[:found.start()] + replacement + source[found.end():]


def test_rewriting_changes_only_the_import() -> None:
    source = ("import time\n\nfrom massgen.filesystem_manager.background_shell import (\n    BackgroundShellManager,\n"
              "    DockerBackgroundShell,\n    kill_shell,\n    start_shell,\n)\n\n\ndef test_x():\n    pass\n")
    assert against_compat(source) == ("import time\n\nfrom supervisor.compat import (BackgroundShellManager, "
                                      "kill_shell, start_shell)\n\n\ndef test_x():\n    pass\n")


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_massgens_own_suite_passes_against_the_drop_in(tmp_path: Path) -> None:
    suite = massgen_suite()
    if suite is None:
        pytest.skip("no MassGen installation with massgen/tests/test_background_shell.py on this machine "
                    "(scripts/install_massgen.py builds one; or set $MGSUP_MASSGEN_SHELL_TESTS)")
    copy = tmp_path / "suite" / "test_background_shell.py"
    copy.parent.mkdir()
    copy.write_text(against_compat(suite.read_text()))
    env = {**os.environ, "MGSUP_HOME": str(tmp_path / "home"), "PYTHONPATH": str(REPO)}
    env.pop("MGSUP_MAX_CONCURRENT", None)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not docker",
         "-o", "markers=docker: needs Docker", "-W", "ignore::DeprecationWarning", str(copy)],
        cwd=copy.parent, env=env, capture_output=True, text=True, timeout=240, check=False)
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    assert result.returncode == 0, f"{suite}:\n{result.stdout[-4000:]}\n{result.stderr[-2000:]}"
    passed = re.search(r"(\d+) passed", summary)
    assert passed and int(passed.group(1)) >= 15 and "failed" not in summary and "error" not in summary, summary
