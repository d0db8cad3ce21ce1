"""Build hook: compiles the native helpers (``src/odeus_compliance/native/*.c``) into one shared library.

The library is plain C called through ctypes (no Python API), so it is built with the platform's C compiler
and no Python headers. An editable install (``pip install -e .``, what ``scripts/setup`` does) builds it next
to its source; a wheel carries it as ``odeus_compliance/native/_odeus_native.so`` and is tagged for the
platform. The library records the SHA-256 of its source, so the loader refuses a library left over from an
older source instead of running it.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import subprocess
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

NATIVE = Path("src", "odeus_compliance", "native")
LIBRARY = "_odeus_native.so"


def source_digest(sources: list[Path]) -> str:
    digest = hashlib.sha256()
    for source in sources:
        digest.update(source.read_bytes())
    return digest.hexdigest()


def compile_library(root: Path, target: Path) -> None:
    folder = root / NATIVE
    sources = sorted(folder.glob("*.c"))
    digested = sorted([*sources, *folder.glob("*.h")], key=lambda path: path.name)
    compiler = shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc")
    if not shutil.which(compiler[0]):  # the compiler this Python was built with may not be here
        compiler = ["cc"]
    # warnings fail the build in the project's own checks (scripts/test), not a user's install
    strict = ["-Werror"] if os.environ.get("ODEUS_NATIVE_WERROR") == "1" else []
    command = [
        *compiler,
        "-O3", "-std=c11", "-fPIC", "-shared", "-fvisibility=hidden",
        "-Wall", "-Wextra", *strict,
        f'-DODEUS_NATIVE_SOURCE="{source_digest(digested)}"',
        *map(str, sources), "-o", str(target),
    ]  # fmt: skip
    subprocess.run(command, check=True)  # noqa: S603 - our compiler on our sources


class NativeBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel":
            return
        root = Path(self.root)
        build_data["pure_python"] = False
        build_data["infer_tag"] = True
        if version == "editable":
            compile_library(root, root / NATIVE / LIBRARY)
            return
        built = Path(tempfile.mkdtemp(prefix="odeus-native-")) / LIBRARY
        compile_library(root, built)
        build_data["force_include"][str(built)] = f"odeus_compliance/native/{LIBRARY}"
