"""Warnings a user of the command line must not see, filtered as narrowly as they can be.

pyHanko (and its certificate validator) import cryptography's DSA key classes, which cryptography 51
deprecates: the warning is about their import, not about anything this service does (it never makes or
accepts DSA keys), and it would otherwise be printed on every command that signs or verifies a PDF. Only that
message, that category, raised from those modules, is ignored; pytest's configuration holds the same filter.
"""

from __future__ import annotations

import warnings

_DSA_FROM_PYHANKO = r"pyhanko(_certvalidator)?\."


def install() -> None:
    """Ignore the known dependency warnings above (call before pyHanko is imported)."""
    try:
        from cryptography.utils import CryptographyDeprecationWarning  # noqa: PLC0415
    except ImportError:  # pragma: no cover - cryptography is a runtime dependency
        return
    warnings.filterwarnings(
        "ignore",
        message="DSA is deprecated",
        category=CryptographyDeprecationWarning,
        module=_DSA_FROM_PYHANKO,
    )
