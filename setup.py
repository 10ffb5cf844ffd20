"""Packaging hook: ship ``globus_compute_alias.pth`` at the top of site-packages.

Everything else is in ``pyproject.toml``. The ``.pth`` file is what makes the opt-in
``GLOBUS_COMPUTE_SDK_ALIAS=1`` work in an unchanged interpreter (see ``globus_compute.compat``).
A ``.pth`` file only runs from the root of a site directory, which no package-data setting
reaches, so ``build_py`` copies it to the root of what becomes the wheel: the build tree for
``pip install .``, the editable wheel's own tree for ``pip install -e .``.
"""

from __future__ import annotations

import os

from setuptools import setup
from setuptools.command.build_py import build_py

PTH = "globus_compute_alias.pth"


class BuildPyWithPth(build_py):
    """``build_py`` that also puts the alias ``.pth`` file at the root of the wheel."""

    def run(self) -> None:
        super().run()
        root = self.build_lib
        if getattr(self, "editable_mode", False):
            # An editable wheel is made from the directory ``install`` points at (setuptools'
            # editable_wheel sets it so; ``build_lib`` is discarded there).
            root = self.get_finalized_command("install").install_lib
        self.copy_file(PTH, os.path.join(root, PTH), preserve_mode=False)

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        return [*super().get_outputs(include_bytecode), os.path.join(self.build_lib, PTH)]


setup(cmdclass={"build_py": BuildPyWithPth})
