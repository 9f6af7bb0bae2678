"""The README's quickstart must run as written, so the README stays true."""

import re

from tests.support import REPO


def test_readme_quickstart_runs(capsys):
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "README has no python quickstart"
    for code in blocks:
        exec(compile(code, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "200 60010" in out
    assert "book" in out and "-3000" in out  # the margin example liquidates its 3 ETH long into the book
