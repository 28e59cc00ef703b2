"""Every ```python block in README.md and docs/*.md runs (so the documentation cannot rot).

The blocks of one page run top to bottom in one shared namespace (block 2 may use names from
block 1), under the suite's settings: rank promotion "raise" and warnings as errors.
"""

import re
import traceback
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # before pyplot is imported anywhere: no windows

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# A fenced block opened by a line that is exactly ```python and closed by a line starting ```.
BLOCK = re.compile(r"^```python[ \t]*\n(.*?)^```", re.MULTILINE | re.DOTALL)


def python_blocks(path: Path) -> list[str]:
    """The code of each ```python block of ``path``, in order."""
    return BLOCK.findall(path.read_text(encoding="utf-8"))


DOCUMENTED = [p for p in PAGES if python_blocks(p)]


def test_pages_with_examples_are_found():
    # Guards the parametrisation below: if the pattern or the layout broke, the example tests
    # would silently vanish instead of failing.
    names = {p.name for p in DOCUMENTED}
    assert {"README.md", "kernels.md", "train.md"} <= names, names
    for path in PAGES:
        opened = len(re.findall(r"^```python", path.read_text(encoding="utf-8"), re.MULTILINE))
        assert opened == len(python_blocks(path)), f"{path.name}: unterminated ```python block"


@pytest.mark.slow
@pytest.mark.parametrize("path", DOCUMENTED, ids=[p.name for p in DOCUMENTED])
def test_page_examples_run(path, tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    monkeypatch.chdir(tmp_path)  # anything a block writes lands in a temporary folder
    namespace = {"__name__": "__docs__"}
    try:
        for index, code in enumerate(python_blocks(path)):
            try:
                exec(compile(code, f"{path.name}[python block {index}]", "exec"), namespace)
            except Exception:
                pytest.fail(
                    f"{path.name}: python block {index} raised\n{traceback.format_exc()}",
                    pytrace=False,
                )
    finally:
        plt.close("all")
