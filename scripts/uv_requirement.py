"""Print uv's pinned requirement, with every hash uv.lock records for it, for pip's --require-hashes.

scripts/setup installs uv this way (pip checks the hashes), then uv installs the rest of the lock.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path


def main() -> int:
    lock = tomllib.loads(Path(sys.argv[1] if len(sys.argv) > 1 else "uv.lock").read_text(encoding="utf-8"))
    for package in lock.get("package", []):
        if package["name"] == "uv":
            files = [*package.get("wheels", []), *([package["sdist"]] if "sdist" in package else [])]
            hashes = " ".join(f"--hash={file['hash']}" for file in files)
            print(f"uv=={package['version']} {hashes}")
            return 0
    print("setup: uv.lock does not pin uv (the `tools` group); run scripts/lock", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
