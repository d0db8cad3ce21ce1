"""Native helpers: C for the few per-value loops that neither Python nor Arrow's kernels make fast enough.

The C sources sit beside this file; ``odeus_native.h`` declares every function once. ``hatch_build.py``
compiles them at install time, with a cffi (API mode) binding generated from that header, into one
extension module, loaded and checked by :mod:`odeus_compliance.native.library`.
"""
