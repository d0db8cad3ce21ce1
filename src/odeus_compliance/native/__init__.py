"""Native helpers: C for the few per-value loops that neither Python nor Arrow's kernels make fast enough.

The C sources sit beside this file and are compiled at install time by ``hatch_build.py`` into one shared
library, loaded by :mod:`odeus_compliance.native.library` through ctypes.
"""
