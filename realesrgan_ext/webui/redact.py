"""Text for the page without server paths: a message from the loader, a decoder or the OS may name the
file it read by its absolute path (an upload's temporary copy, a checkpoint under the experiments
folder); the page shows the file's name instead, so it does not reveal how the server is laid out.
"""

from __future__ import annotations

import re

# An absolute POSIX path: a '/' at the start or after a space, quote, bracket or '=' (so neither a
# relative path such as 'experiments/*/models' nor a URL), up to a space, quote, bracket, ',' or ';'.
_PART = r"[^/\s'\"`()\[\],;]+"
_ABSOLUTE = re.compile(rf"(?:^|(?<=[\s'\"`(\[=]))(?:/{_PART})*/({_PART})")


def hide_paths(text: str) -> str:
    """``text`` with each absolute path replaced by its last component."""
    return _ABSOLUTE.sub(r"\1", text)
