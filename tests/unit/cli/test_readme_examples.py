"""The README's examples work as written: its example playbook passes the test cases it shows."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from click.testing import CliRunner

from clampdown.cli import cli

ROOT = Path(__file__).resolve().parents[3]


def yaml_block_after(heading: str) -> str:
    readme = (ROOT / "README.md").read_text()
    start = readme.index(f"\n{heading}\n")
    match = re.compile(r"```yaml\n(.*?)```", re.S).search(readme, start)
    assert match, f"no yaml block after {heading!r}"
    return match.group(1)


def test_the_example_playbook_passes_the_example_tests(tmp_path: Path) -> None:
    playbook = yaml_block_after("## Playbooks")
    tests = yaml_block_after("## Testing playbooks: `clampdown test`")
    events = re.findall(r"event: \.\./(\S+)", tests)
    assert len(events) == 2
    for event in events:  # the cases name corpus files relative to the playbook folder
        (tmp_path / event).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / event, tmp_path / event)
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "playbooks").mkdir()
    (tmp_path / "playbooks" / "example.yaml").write_text(playbook + tests)
    out = CliRunner().invoke(cli, ["test", "--playbooks", str(tmp_path / "playbooks"), "--strict"])
    assert out.exit_code == 0, out.output
    assert out.output.splitlines()[-1].startswith("2 passed, 0 failed, 0 error(s) in 2 case(s) of 1 playbook(s)")
