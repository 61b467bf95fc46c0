"""git_dirty: set by edits to what a run reads (code, configs), not by docs, tests or results."""
import subprocess

from experiments.results import git_info


def _git(root, *args):
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


def test_git_dirty_counts_code_and_configs_only(tmp_path):
    for rel in ("experiments/a.py", "conf/x.yaml", "docs/d.md", "tests/test_a.py", "README.md", "results/r.json"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("v1\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", "-A")
    _git(tmp_path, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "init")
    assert git_info(tmp_path)["git_dirty"] is False
    for rel in ("docs/d.md", "tests/test_a.py", "README.md", "results/r.json"):
        (tmp_path / rel).write_text("v2\n")
    (tmp_path / "untracked.py").write_text("x = 1\n")
    assert git_info(tmp_path)["git_dirty"] is False
    (tmp_path / "conf/x.yaml").write_text("v2\n")
    assert git_info(tmp_path)["git_dirty"] is True
    _git(tmp_path, "checkout", "-q", "conf/x.yaml")
    (tmp_path / "experiments/a.py").write_text("v2\n")
    info = git_info(tmp_path)
    assert info["git_dirty"] is True and len(info["git_commit"]) == 40
