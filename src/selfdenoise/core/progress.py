"""Progress bars that also read well in a log file: on a terminal tqdm's bar as usual; when stderr is not
a terminal (a log, CI, ``nohup``), one plain line per update at most every ``LOG_INTERVAL`` seconds
instead of thousands of carriage-return redraws."""
from __future__ import annotations

import io
import sys

from tqdm import tqdm as _tqdm

#: seconds between two progress lines written to a log
LOG_INTERVAL = 30.0


class _Lines(io.TextIOBase):
    """A stream for tqdm that turns each redraw into one line of stderr."""

    def write(self, text: str) -> int:
        line = text.replace("\r", "").strip()
        if line:
            sys.stderr.write(line + "\n")
        return len(text)

    def flush(self) -> None:
        sys.stderr.flush()


class _LogBar(_tqdm):
    """tqdm whose postfix and description wait for the next periodic line (tqdm redraws on each by default,
    which a training that sets its loss every few steps turned into thousands of lines)."""

    def set_postfix(self, ordered_dict=None, refresh=True, **kwargs):
        super().set_postfix(ordered_dict, refresh=False, **kwargs)

    def set_description(self, desc=None, refresh=True):
        super().set_description(desc, refresh=False)


def tqdm(iterable=None, **options):
    """``tqdm.tqdm`` with the same arguments; plain periodic lines when stderr is not a terminal."""
    if not options.get("disable") and "file" not in options and not sys.stderr.isatty():
        options = {"mininterval": LOG_INTERVAL, "ascii": True, "file": _Lines(), **options}
        return _LogBar(iterable, **options)
    return _tqdm(iterable, **options)
