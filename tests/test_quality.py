"""The house rules that a machine can check: lint, workflow lint, and the README's commands."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_ruff_is_clean():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", str(REPO)], capture_output=True, text=True,
                            cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr


def test_snakemake_lint_is_clean():
    result = subprocess.run([sys.executable, "-m", "snakemake", "--lint"], capture_output=True, text=True, cwd=REPO,
                            timeout=300)
    assert result.returncode == 0 and "Congratulations" in result.stdout + result.stderr, \
        result.stdout + result.stderr


def readme_commands() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", (REPO / "README.md").read_text(), flags=re.S)
    return [line for block in blocks[:2] for line in block.splitlines() if line and not line.startswith("#")]


def test_ci_runs_the_readme_test_command_and_readme_runs_the_main_job():
    main, tests = readme_commands()
    assert main.endswith("snakemake --cores all reproduce_tables")
    ci = (REPO / ".ci/run").read_text().splitlines()
    assert tests in ci, "the README's test command and .ci/run differ"
    assert main.split(" && snakemake")[0] == tests.split(" && pytest")[0], "the two commands install differently"
