"""CAS Registry Numbers: format and check digit."""

from __future__ import annotations

import re

CAS_RE = re.compile(r"^(\d{2,7})-(\d{2})-(\d)$")


def is_valid_cas(cas: str) -> bool:
    """True when ``cas`` is well formed and its check digit is right."""
    m = CAS_RE.match(cas.strip())
    if m is None:
        return False
    digits = (m.group(1) + m.group(2))[::-1]
    return sum((i + 1) * int(d) for i, d in enumerate(digits)) % 10 == int(m.group(3))
