"""Text from files made safe to show on a terminal (NOTE [text from files] in ``output.py``).

Imports nothing heavy: error lines use it before torch is loaded.
"""

from __future__ import annotations

import re

# C0 and C1 control characters, DEL, and the invisible marks that reorder or break lines
# (bidirectional overrides and isolates, line and paragraph separators).
_CONTROL = re.compile("[\\x00-\\x1f\\x7f-\\x9f\\u061c\\u200e\\u200f\\u2028-\\u202e\\u2066-\\u2069]")


def _escaped(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe(text: object, *, keep_newlines: bool = False) -> str:
    """``text`` with control characters escaped as ``\\x1b`` or ``\\u202e``.

    Example:
        >>> safe("temp\\x1b]0;owned\\x07")
        'temp\\\\x1b]0;owned\\\\x07'
        >>> print(safe("a\\nb", keep_newlines=True))
        a
        b
    """
    text = str(text)
    if keep_newlines:
        return "\n".join(_CONTROL.sub(_escaped, line) for line in text.split("\n"))
    return _CONTROL.sub(_escaped, text)
