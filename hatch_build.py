"""Build hook: compiles the native helpers (``src/odeus_compliance/native/*.c``) into one extension module.

The helpers' signatures are declared once, in ``native/odeus_native.h``: every C file includes it (so a
definition that differs fails to compile), and cffi in API mode reads the same declarations to generate the
Python binding, whose calls go through those prototypes (so a wrong signature fails the build, never
memory). Token MACs come from OpenSSL's libcrypto. An editable install (``scripts/setup``) builds the module
next to its source; a wheel carries it and is tagged for the platform. The module records the SHA-256 of its
sources, so the loader refuses one left over from older sources instead of running it.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import shutil
import subprocess
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

NATIVE = Path("src", "odeus_compliance", "native")
HEADER = "odeus_native.h"
MODULE = "_odeus_native"
# Mistakes that would corrupt memory at run time are errors in every build, a user's install included.
ALWAYS_ERRORS = [
    "-Werror=implicit-function-declaration",
    "-Werror=incompatible-pointer-types",
    "-Werror=int-conversion",
    "-Werror=return-type",
]


def module_file_name() -> str:
    return MODULE + (sysconfig.get_config_var("EXT_SUFFIX") or ".so")


def source_digest(sources: list[Path]) -> str:
    digest = hashlib.sha256()
    for source in sources:
        digest.update(source.read_bytes())
    return digest.hexdigest()


def cffi_declarations(header: Path) -> str:
    """The declarations between the header's cffi markers, without comments (cffi parses plain C)."""
    text = header.read_text(encoding="utf-8")
    start, end = text.index("/* cffi: declarations */"), text.index("/* cffi: end */")
    return re.sub(r"/\*.*?\*/", "", text[start:end], flags=re.S)


def _compiler() -> list[str]:
    compiler = shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc")
    if not shutil.which(compiler[0]):  # the compiler this Python was built with may not be here
        compiler = ["cc"]
    return compiler


def compile_module(root: Path, target: Path) -> None:
    import cffi  # noqa: PLC0415 - a build requirement, needed only here

    folder = root / NATIVE
    sources = sorted(folder.glob("*.c"))
    digested = sorted([*sources, *folder.glob("*.h")], key=lambda path: path.name)
    work = Path(tempfile.mkdtemp(prefix="odeus-native-"))
    builder = cffi.FFI()
    builder.cdef(cffi_declarations(folder / HEADER))
    builder.set_source(f"odeus_compliance.native.{MODULE}", f'#include "{HEADER}"')
    binding = work / f"{MODULE}.c"
    builder.emit_c_code(str(binding))

    compiler = _compiler()
    include = ["-I", str(folder), "-I", sysconfig.get_paths()["include"]]
    common = ["-O3", "-fPIC", "-fvisibility=hidden", *ALWAYS_ERRORS, *include]
    # all warnings fail the build in the project's own checks (scripts/test), not a user's install
    strict = ["-Werror"] if os.environ.get("ODEUS_NATIVE_WERROR") == "1" else []
    objects = []
    for source in sources:
        obj = work / f"{source.stem}.o"
        flags = [
            "-std=c11",
            "-Wall",
            "-Wextra",
            *strict,
            f'-DODEUS_NATIVE_SOURCE="{source_digest(digested)}"',
        ]
        _run([*compiler, *common, *flags, "-c", str(source), "-o", str(obj)])
        objects.append(obj)
    # cffi's generated wrapper: its own code is not ours to warn about, but its calls are checked above
    binding_object = work / f"{MODULE}.o"
    _run([*compiler, *common, "-std=gnu11", "-c", str(binding), "-o", str(binding_object)])
    _run([*compiler, "-shared", *map(str, [*objects, binding_object]), "-lcrypto", "-o", str(target)])
    shutil.rmtree(work, ignore_errors=True)


def _run(command: list[str]) -> None:
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
            for stale in (root / NATIVE).glob(f"{MODULE}*.so"):
                stale.unlink()
            compile_module(root, root / NATIVE / module_file_name())
            return
        built = Path(tempfile.mkdtemp(prefix="odeus-native-")) / module_file_name()
        compile_module(root, built)
        build_data["force_include"][str(built)] = f"odeus_compliance/native/{built.name}"
