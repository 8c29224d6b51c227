"""The Python package carries the library's one version (PESC_VERSION in pesc.h)."""

import importlib.metadata
import re
from pathlib import Path

import pesc

HEADER = Path(__file__).resolve().parents[2] / "libpesc" / "include" / "pesc" / "pesc.h"


def test_package_metadata_and_module_agree_with_the_header():
    version = re.search(r'^#define PESC_VERSION "([0-9.]+)"$', HEADER.read_text(), re.MULTILINE).group(1)
    assert pesc.__version__ == version
    assert importlib.metadata.version("pesc") == version


def test_pip_show_names_the_license_and_what_function_mode_needs():
    metadata = importlib.metadata.metadata("pesc")
    assert metadata["License"] == "MIT"
    assert "cloudpickle" in (importlib.metadata.requires("pesc") or [])
