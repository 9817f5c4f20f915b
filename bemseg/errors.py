"""The one exception type users see.

Every failure caused by input the user controls (a file, a config value, a model name) raises
`BemsegError` with a single line that names the file or field and says what to do. The command
line and the workflow scripts print that line instead of a traceback; anything else that escapes
is a bug in the suite and keeps its traceback.
"""

from __future__ import annotations


class BemsegError(Exception):
    """A user-facing error: `str(err)` is one line naming the culprit and the remedy."""

    def __init__(self, message: str) -> None:
        lines = [line.strip() for line in message.splitlines() if line.strip()]
        if len(lines) > 1 and lines[0].startswith("Caught ") and "DataLoader worker" in lines[0]:
            # torch re-raises a worker's error as "Caught ... Original Traceback ...": keep the error's own line
            lines = [lines[-1].split(": ", 1)[-1]]
        super().__init__(" ".join(lines))


class ConfigError(BemsegError):
    """A configuration value is missing, unknown or out of range."""


class DataError(BemsegError):
    """A data file (dataset, prepared data, a result read back) is missing, unreadable or inconsistent."""


class WeightsError(BemsegError):
    """A weight file is missing or does not match its recorded checksum."""


class ModelError(BemsegError):
    """A model name is unknown or a model breaks the suite's model contract."""


class OutputError(BemsegError):
    """An output location is not a folder, not writable, full, holds foreign files, or is being written."""
