"""Build of feast_sqlreg's C extension.

Libraries are found with pkg-config (override with the environment variables
FEAST_SQLREG_CFLAGS / FEAST_SQLREG_LDFLAGS); the protobuf-c sources are
generated from src/proto/*.proto with protoc-c at build time, so the sdist
carries only what we wrote. A .pth file is installed next to the package:
it registers the import hook that makes `registry_type: sql` use the native
registry (see feast_sqlreg_hook.py).
"""

import os
import shlex
import shutil
import subprocess
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

ROOT = Path(__file__).parent.resolve()
SRC = "src"
PTH = "feast_sqlreg.pth"


def pkg_config(*args):
    try:
        out = subprocess.run(
            ["pkg-config", *args], check=True, capture_output=True, text=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    return shlex.split(out)


def library(names):
    """(cflags, libs) of the first pkg-config package found among names."""
    for name in names:
        cflags = pkg_config("--cflags", name)
        libs = pkg_config("--libs", name)
        if cflags is not None and libs is not None:
            return cflags, libs
    return None


def required(names, apt):
    found = library(names)
    if found is None:
        raise SystemExit(
            f"feast_sqlreg needs {' or '.join(names)} (pkg-config found none); "
            f"on Debian: apt-get install {apt}"
        )
    return found


C_SOURCES = [
    "module.c",
    "registry.c",
    "store.c",
    "pb.c",
    "buf.c",
    "db.c",
    "db_sqlite.c",
    "pool.c",
    "url.c",
]
cflags, libs = [], []
for names, apt in [
    (["sqlite3"], "libsqlite3-dev"),
    (["libprotobuf-c"], "libprotobuf-c-dev protobuf-c-compiler"),
]:
    c, l = required(names, apt)
    cflags += c
    libs += l
macros = [("_POSIX_C_SOURCE", "200809L")]

# Optional backends: built when their source file and client library exist.
for source, names, macro in [
    ("db_pg.c", ["libpq"], "FEAST_SQLREG_HAVE_PG"),
    # MariaDB Connector/C (Debian's libmysqlclient); Oracle's client library
    # is not built against: its code paths have never run here.
    ("db_mysql.c", ["libmariadb"], "FEAST_SQLREG_HAVE_MYSQL"),
]:
    if (ROOT / SRC / source).exists():
        found = library(names)
        if found is None:
            raise SystemExit(f"{source} needs one of {names} via pkg-config")
        C_SOURCES.append(source)
        cflags += found[0]
        libs += found[1]
        macros.append((macro, "1"))

cflags += shlex.split(os.environ.get("FEAST_SQLREG_CFLAGS", ""))
libs += shlex.split(os.environ.get("FEAST_SQLREG_LDFLAGS", ""))

WARNINGS = [
    "-std=c11",
    "-Wall",
    "-Wextra",
    "-Wmissing-prototypes",
    "-Wshadow",
    "-Wstrict-prototypes",
    "-fvisibility=hidden",
]


class BuildExt(build_ext):
    """Generates the protobuf-c sources before compiling."""

    def run(self):
        gen = (Path(self.build_temp) / "gen").resolve()
        gen.mkdir(parents=True, exist_ok=True)
        protoc = shutil.which("protoc-c")
        if protoc is None:
            raise SystemExit(
                "feast_sqlreg needs protoc-c to build: apt-get install protobuf-c-compiler"
            )
        for proto in sorted((ROOT / SRC / "proto").glob("*.proto")):
            subprocess.run(
                [protoc, f"--proto_path={proto.parent}", f"--c_out={gen}", proto.name],
                check=True,
                cwd=proto.parent,
            )
        for ext in self.extensions:
            ext.include_dirs.append(str(gen))
            ext.sources += [str(p) for p in sorted(gen.glob("*.pb-c.c"))]
        super().run()


class BuildPy(build_py):
    """Puts the .pth hook at the root of site-packages."""

    def run(self):
        super().run()
        self.copy_file(str(ROOT / PTH), str(Path(self.build_lib) / PTH))


setup(
    ext_modules=[
        Extension(
            "feast_sqlreg._sqlregistry",
            sources=[f"{SRC}/{s}" for s in C_SOURCES],
            include_dirs=[SRC],
            define_macros=macros,
            extra_compile_args=WARNINGS + cflags,
            extra_link_args=libs + ["-pthread"],
        )
    ],
    cmdclass={"build_ext": BuildExt, "build_py": BuildPy},
)
