"""odeus-compliance: privacy-compliance reporting for the Odeus AI workspace."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("odeus-compliance")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
