"""The install honours the lock, the image's part of it holds no tools, and the native build checks
signatures.

Run against the real tools: uv reads the committed uv.lock, a fresh virtual environment receives the
runtime part of it exactly as the Containerfile installs it, and the build hook compiles the native helpers.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from packaging.markers import Marker

ROOT = Path(__file__).resolve().parents[2]
UV = str(Path(sys.executable).with_name("uv"))
TOOLS = {"pytest", "pytest-asyncio", "pytest-timeout", "mypy", "ruff", "hypothesis", "aiosmtpd", "polars"}
TOOLS |= {"pyarrow-stubs", "hatchling", "uv", "pip", "editables"}


def _export(*selection: str) -> dict[str, str]:
    """name -> version of what uv.lock pins for the selection, as uv exports it."""
    result = subprocess.run(
        [UV, "export", "--frozen", "--no-emit-project", "--format", "requirements-txt", "-q", *selection],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    pins = re.findall(r"^([A-Za-z0-9_.\-]+)==([^\s;]+)(?: ; (.*?))?(?: \\)?$", result.stdout, flags=re.M)
    return {
        name.lower().replace("_", "-"): version
        for name, version, marker in pins
        if not marker or Marker(marker).evaluate()  # what applies to this interpreter and platform
    }


def test_every_installed_dependency_is_the_locked_version() -> None:
    locked = _export("--all-groups")
    assert {"cryptography", "pyhanko", "pytest", "litestar"} <= set(locked)
    installed = {name: importlib.metadata.version(name) for name in locked if _is_installed(name)}
    assert set(installed) == set(locked), sorted(set(locked) - set(installed))
    assert installed == locked


def _is_installed(name: str) -> bool:
    try:
        importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def test_the_lock_matches_pyproject() -> None:
    check = subprocess.run(
        [UV, "lock", "--check", "--offline"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert check.returncode == 0, check.stderr


def test_the_image_installs_the_runtime_part_of_the_lock_only() -> None:
    text = (ROOT / "Containerfile").read_text(encoding="utf-8")
    assert "uv export --frozen --no-default-groups --no-emit-project" in text
    assert "--require-hashes" in text
    runtime = _export("--no-default-groups")
    assert {"cryptography", "pyhanko", "weasyprint", "litestar", "cffi"} <= set(runtime)
    assert TOOLS.isdisjoint(runtime), sorted(TOOLS & set(runtime))
    everything = _export("--all-groups")
    assert all(everything[name] == version for name, version in runtime.items())


@pytest.mark.slow
def test_the_runtime_part_of_the_lock_and_the_wheel_make_a_working_install(tmp_path: Path) -> None:
    """What the Containerfile does, without a container engine: runtime requirements with hashes into a
    fresh environment, our wheel built without resolving, then the smoke checks of the image."""
    requirements = tmp_path / "runtime.txt"
    subprocess.run(
        [UV, "export", "--frozen", "--no-default-groups", "--no-emit-project", "--format",
         "requirements-txt", "-q", "-o", str(requirements)],
        cwd=ROOT, check=True, timeout=120, capture_output=True,
    )  # fmt: skip
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = str(venv / "bin" / "python")
    install = [UV, "pip", "install", "-q", "--python", python, "--require-hashes", "--no-deps"]
    subprocess.run([*install, "-r", str(requirements)], check=True, timeout=600, capture_output=True)
    wheels = tmp_path / "wheels"
    built = subprocess.run(
        [UV, "build", "--wheel", "--no-build-isolation", "--python", sys.executable, "-o", str(wheels), "-q"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-2000:]
    wheel = next(wheels.glob("*.whl"))
    subprocess.run(
        [*install.copy()[:-2], "--no-deps", str(wheel)], check=True, timeout=300, capture_output=True
    )

    smoke = (
        "import weasyprint, importlib.util as u\n"
        "weasyprint.HTML(string='<p>ok</p>').write_pdf()\n"
        "from odeus_compliance.native.library import native_library\n"
        "native_library()\n"
        "from odeus_compliance.console.templating import ConsoleTemplates, static_url\n"
        "assert static_url('vendor/htmx-2.0.11.min.js') and static_url('console.css')\n"
        "ConsoleTemplates().environment.get_template('admin/schedules.html')\n"
        "tools = ('pytest', 'mypy', 'ruff', 'hypothesis', 'aiosmtpd', 'polars', 'playwright')\n"
        "missing = [m for m in tools if u.find_spec(m)]\n"
        "assert not missing, missing\n"
    )
    ran = subprocess.run([python, "-c", smoke], capture_output=True, text=True, timeout=300, check=False)
    assert ran.returncode == 0, ran.stderr[-2000:]
    checked = subprocess.run(
        [str(venv / "bin" / "odeus-compliance"), "policy", "check", str(ROOT / "policies" / "default.toml")],
        capture_output=True, text=True, timeout=300, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stderr
    assert checked.stderr == ""


def _build_hook() -> ModuleType:
    spec = importlib.util.spec_from_file_location("odeus_hatch_build", ROOT / "hatch_build.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _native_copy(tmp_path: Path) -> Path:
    native = tmp_path / "src" / "odeus_compliance" / "native"
    shutil.copytree(
        ROOT / "src" / "odeus_compliance" / "native", native, ignore=shutil.ignore_patterns("*.so")
    )
    return native


def test_the_build_compiles_the_helpers_from_a_copy_of_their_sources(tmp_path: Path) -> None:
    hook = _build_hook()
    _native_copy(tmp_path)
    target = tmp_path / hook.module_file_name()
    hook.compile_module(tmp_path, target)
    assert target.stat().st_size > 0


@pytest.mark.parametrize(
    ("old", "new"),
    [
        # a scalar of another width
        ("(const int64_t *columns, int64_t width,", "(const int64_t *columns, int32_t width,"),
        # a pointer to another type
        ("odeus_count_maps_keys(const int32_t *offsets,", "odeus_count_maps_keys(const int64_t *offsets,"),
        # one parameter more
        ("int32_t *out_offsets);\n\n/* Count maps", "int32_t *out_offsets, int more);\n\n/* Count maps"),
    ],
    ids=["scalar-width", "pointer-type", "parameter-count"],
)  # fmt: skip
def test_a_signature_that_differs_from_the_header_fails_the_build(tmp_path: Path, old: str, new: str) -> None:
    hook = _build_hook()
    header = _native_copy(tmp_path) / "odeus_native.h"
    text = header.read_text(encoding="utf-8")
    assert old in text
    header.write_text(text.replace(old, new), encoding="utf-8")
    with pytest.raises(subprocess.CalledProcessError):
        hook.compile_module(tmp_path, tmp_path / hook.module_file_name())
