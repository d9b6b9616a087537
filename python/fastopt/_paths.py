"""Where the installed C/C++ API lives, for build systems (as ``pybind11.get_include()``).

The wheel carries, next to the Python package: ``fastopt/include`` (``fastopt/fastopt.hpp``,
the header-only C++ API, and ``fastopt/fastopt.h``, the C ABI), ``fastopt/lib``
(``libfastopt_c``, the C library) and ``fastopt/share/cmake/fastopt`` (the CMake package)::

    cmake -Dfastopt_DIR=$(python -c "import fastopt; print(fastopt.get_cmake_dir())") ...
    c++ -std=c++17 -ffp-contract=off -I$(python -c "import fastopt; print(fastopt.get_include())") ...
"""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent


def get_include() -> str:
    """The directory to put on the include path for ``#include <fastopt/fastopt.hpp>``
    (or ``<fastopt/fastopt.h>``).  In a source checkout without an install, ``cpp/include``."""
    installed = _HERE / "include"
    if installed.is_dir():
        return str(installed)
    checkout = _HERE.parent.parent / "cpp" / "include"
    if (checkout / "fastopt" / "fastopt.hpp").is_file():
        return str(checkout)
    raise FileNotFoundError(
        f"fastopt's headers are not installed (no {installed}); "
        "install fastopt with pip to get them"
    )


def get_cmake_dir() -> str:
    """The directory holding ``fastoptConfig.cmake``: pass it as ``-Dfastopt_DIR=...`` to
    CMake, then ``find_package(fastopt CONFIG)`` gives ``fastopt::fastopt`` and ``fastopt::c``."""
    d = _HERE / "share" / "cmake" / "fastopt"
    if not (d / "fastoptConfig.cmake").is_file():
        raise FileNotFoundError(
            f"fastopt's CMake package is not installed (no {d}); install "
            "fastopt with pip, or use add_subdirectory on a source checkout"
        )
    return str(d)
