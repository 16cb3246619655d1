"""Keeps TensorFlow's start-up chatter off the user's terminal.

Since TF 2.20 the C++ runtime logs INFO lines ("oneDNN custom operations are on",
"Could not find cuda drivers", "failed call to cuInit") before absl logging is
initialised, so ``TF_CPP_MIN_LOG_LEVEL`` no longer silences them. They are written
straight to file descriptor 2, below Python, so the only way to filter them is to
point that descriptor at a temporary file while TensorFlow starts, then pass on every
line that is not known start-up noise. Anything else (a real error) still reaches
the user.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile

# Lines TensorFlow prints on every start; each is harmless on a machine without CUDA.
_NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\)"
    r"|[IW]\d{4} \d\d:\d\d:[\d.]+ +\d+ "
    r"|E\d{4} .*cuInit"
    r"|To enable the following instructions:)"
)


def is_noise(line: str) -> bool:
    """True for a start-up log line that says nothing the user must act on."""
    return bool(_NOISE.match(line))


@contextlib.contextmanager
def filtered_native_stderr(enabled: bool = True):
    """Filters known start-up noise out of everything written to fd 2 in the block."""
    if not enabled:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = [
                line for line in capture.read().decode("utf-8", "replace").splitlines(True)
                if not is_noise(line)
            ]
            sys.stderr.write("".join(kept))
            sys.stderr.flush()


def start_tensorflow(quiet: bool = True) -> None:
    """Imports TensorFlow and initialises its devices with the noise filtered out."""
    with filtered_native_stderr(quiet):
        import tensorflow as tf

        tf.config.list_logical_devices()
