"""Builds the pesc Python package: setuptools drives CMake for the pesc._core extension.

    /usr/bin/python3 -m venv --system-site-packages build/venv
    build/venv/bin/pip install --no-build-isolation .

Environment:
    PESC_CMAKE_BUILD_DIR  an existing CMake build of this tree configured with
                          -DPESC_BUILD_PYTHON=ON to reuse (scripts/test.sh does);
                          default: build-python/cmake, configured here.
"""

import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent


class CMakeExtension(Extension):
    def __init__(self, name: str) -> None:
        super().__init__(name, sources=[])


class CMakeBuild(build_ext):
    def build_extension(self, ext: Extension) -> None:
        build_dir = os.environ.get("PESC_CMAKE_BUILD_DIR")
        if build_dir:
            build_dir = Path(build_dir).resolve()
        else:
            build_dir = ROOT / "build-python" / "cmake"
            configure = [
                "cmake", "-S", str(ROOT), "-B", str(build_dir),
                "-DCMAKE_BUILD_TYPE=Release",
                "-DPESC_BUILD_PYTHON=ON", "-DPESC_BUILD_TESTS=OFF", "-DPESC_BUILD_BENCHMARKS=OFF",
                "-DPESC_BUILD_EXAMPLES=OFF", "-DPESC_SHARED=OFF",
                f"-DPython3_EXECUTABLE={sys.executable}",
            ]
            if shutil.which("ninja"):
                configure += ["-G", "Ninja"]
            subprocess.run(configure, check=True)
        subprocess.run(["cmake", "--build", str(build_dir), "--target", "_core", "-j", str(os.cpu_count() or 2)],
                       check=True)
        suffix = sysconfig.get_config_var("EXT_SUFFIX")
        built = build_dir / "bindings" / "python" / f"_core{suffix}"
        if not built.exists():
            raise RuntimeError(f"{built} was not built; was {build_dir} configured with -DPESC_BUILD_PYTHON=ON "
                               f"for {sys.executable}?")
        target = Path(self.get_ext_fullpath(ext.name))
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(built, target)


def pesc_version() -> str:
    """PESC_VERSION from the public header: the version's one home."""
    header = (ROOT / "libpesc" / "include" / "pesc" / "pesc.h").read_text()
    found = re.search(r'^#define PESC_VERSION "([0-9.]+)"$', header, re.MULTILINE)
    if not found:
        raise RuntimeError("libpesc/include/pesc/pesc.h defines no PESC_VERSION")
    return found.group(1)


setup(
    version=pesc_version(),
    ext_modules=[CMakeExtension("pesc._core")],
    cmdclass={"build_ext": CMakeBuild},
    options={"build": {"build_base": "build-python/setuptools"}},
)
