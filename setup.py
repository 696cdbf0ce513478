"""Build of lossctl's optional C extension (everything else is declared in pyproject.toml).

The extension (``lossctl._kernels``) is an accelerator: when no C compiler is available, or
the build fails for any other reason, the installation goes on without it and lossctl runs
its NumPy kernels (``lossctl --version`` says which are in use).
"""

import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class optional_build_ext(build_ext):
    """build_ext that warns instead of failing: the extension is optional."""

    def run(self):
        try:
            super().run()
        except Exception as e:  # no compiler at all (setuptools raises several kinds)
            self._skip(e)

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as e:  # a compiler that fails on this source
            self._skip(e)

    def _skip(self, error):
        sys.stderr.write(
            f"\nWARNING: lossctl's C extension was not built ({type(error).__name__}: {error});\n"
            "lossctl will use its NumPy kernels (same results, slower). Install a C compiler\n"
            "(e.g. gcc) and reinstall for the compiled kernels.\n\n")


extra = [] if os.name == "nt" else ["-O3", "-std=gnu11", "-fno-math-errno", "-fno-trapping-math", "-Wno-psabi"]

setup(
    ext_modules=[Extension("lossctl._kernels", ["lossctl/_kernels.c"], extra_compile_args=extra, optional=True),
                 Extension("lossctl.io._csv", ["lossctl/io/_csv.c"], extra_compile_args=extra, optional=True)],
    cmdclass={"build_ext": optional_build_ext},
)
