"""The wrapper every workflow script runs its one package call in.

Output goes to the rule's log file; a user error (BemsegError) ends the job with its one line, in
the log and on the terminal, and a non-zero exit status; no traceback. The hub is never contacted.
An output folder that another bemseg process is writing is waited for, not refused: after a
killed run that process can only be one of its jobs, still finishing what this run needs
(`bemseg.lock`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable
from typing import Any

from bemseg.errors import BemsegError
from bemseg.lock import waiting_for_others


def run_job(snakemake: Any, step: Callable[[], Any]) -> None:
    """Run `step()` for a Snakemake job, logging to the job's log file."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    log_path = snakemake.log[0] if len(snakemake.log) else os.devnull
    with open(log_path, "w", encoding="utf-8") as log, contextlib.redirect_stdout(log), \
            contextlib.redirect_stderr(log):
        logging.basicConfig(stream=log, level=logging.INFO, force=True,
                            format="%(asctime)s %(name)s %(levelname)s %(message)s")
        try:
            with waiting_for_others():
                step()
        except BemsegError as err:
            line = f"bemseg: error: {err}"
            print(line, file=log)
            print(f"{line} (rule {snakemake.rule}, log {log_path})", file=sys.__stderr__)
            sys.exit(1)
