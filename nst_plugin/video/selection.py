"""Which frames a run takes: ``--frames A-B`` ranges."""

from __future__ import annotations

import re

from ..errors import UserError

def parse_range(text: str | None) -> tuple[int | None, int | None]:
    """``"1-120"`` -> (1, 120); ``"10-"`` -> (10, None); ``"7"`` -> (7, 7); None -> (None, None)."""
    if text is None or not str(text).strip():
        return None, None
    match = re.fullmatch(r"\s*(\d+)?\s*(-)?\s*(\d+)?\s*", str(text))
    if not match or (match.group(1) is None and match.group(3) is None):
        raise UserError(f"--frames expects A-B, A- or N (frame numbers), got {text!r}")
    first = int(match.group(1)) if match.group(1) else None
    last = int(match.group(3)) if match.group(3) else (None if match.group(2) else first)
    if (first is not None and first < 1) or (last is not None and last < 1):
        raise UserError(f"--frames {text!r}: frames count from 1 (the first frame is 1, not 0)")
    if first is not None and last is not None and last < first:
        raise UserError(f"--frames {text!r}: the last frame comes before the first")
    return first, last
