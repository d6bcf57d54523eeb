"""The README's Python example runs as written."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_python_example_runs(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
    assert blocks, "the README has no Python example"
    monkeypatch.chdir(tmp_path)  # the example saves a checkpoint
    namespace: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)

    items = namespace["items"]
    assert items.num_embeddings == 3
    assert namespace["user"].shape == (2, 32)
    assert (tmp_path / "items.pt").is_file()
