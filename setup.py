"""Build of feast_sqlreg's C extensions: the core (_sqlregistry) and one
module per optional backend (_backend_pg, _backend_mysql).

Libraries are found with pkg-config (override with the environment variables
FEAST_SQLREG_CFLAGS / FEAST_SQLREG_LDFLAGS); the protobuf-c sources are
generated from src/pb/*.proto with protoc-c at build time, so the sdist
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
CORE = "_sqlregistry"


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


# The core: everything but the PostgreSQL and MySQL drivers, which are
# extension modules of their own (_backend_pg, _backend_mysql) so that
# `import feast_sqlreg._sqlregistry` maps neither client library; the core
# imports one the first time a URL of its kind is opened. A backend module
# compiles its driver, its Python face and the stateless helpers the driver
# calls (db_util.c, url.c); never a file with state the core also uses
# (db.c holds the driver registry, reached through the core's _C_API
# capsule).
CORE_SOURCES = [
    "python/module.c",
    "python/store_type.c",
    "store/store.c",
    "store/txn.c",
    "store/replica.c",
    "store/rowset.c",
    "store/schema.c",
    "store/rowcheck.c",
    "store/read.c",
    "store/write.c",
    "store/assemble.c",
    "store/changes.c",
    "common/kinds.c",
    "pb/pb.c",
    "common/buf.c",
    "db/db.c",
    "db/db_util.c",
    "db/db_sqlite.c",
    "db/pool.c",
    "db/url.c",
    "front/front.c",
    "python/front_type.c",
]
cflags, libs = [], []
for names, apt in [
    (["sqlite3"], "libsqlite3-dev"),
    (["libprotobuf-c"], "libprotobuf-c-dev protobuf-c-compiler"),
    (["libnghttp2"], "libnghttp2-dev"),
]:
    c, l = required(names, apt)
    cflags += c
    libs += l
# The stable ABI of CPython 3.10, the oldest Feast supports: one abi3 wheel
# per platform serves every later CPython. Always on, so the wheel and
# `pip install .` compile the same code.
LIMITED_API = 0x030A0000
macros = [("_POSIX_C_SOURCE", "200809L"), ("Py_LIMITED_API", f"0x{LIMITED_API:08X}")]
core_macros = list(macros)
env_cflags = shlex.split(os.environ.get("FEAST_SQLREG_CFLAGS", ""))
env_libs = shlex.split(os.environ.get("FEAST_SQLREG_LDFLAGS", ""))

# Optional backends: built when their source file and client library exist.
# The core's macro says the build has the module (its `backends` constant,
# and the "no backend" message), without importing it.
backends = []  # (module name, sources, cflags, libs)
for module, sources, names, macro in [
    ("_backend_pg", ["python/pg_module.c", "db/db_pg.c"], ["libpq"], "FEAST_SQLREG_HAVE_PG"),
    # MariaDB Connector/C (Debian's libmysqlclient); Oracle's client library
    # is not built against: its code paths have never run here.
    ("_backend_mysql", ["python/mysql_module.c", "db/db_mysql.c"], ["libmariadb"],
     "FEAST_SQLREG_HAVE_MYSQL"),
]:
    if all((ROOT / SRC / s).exists() for s in sources):
        found = library(names)
        if found is None:
            raise SystemExit(f"{sources[-1]} needs one of {names} via pkg-config")
        backends.append((module, sources + ["db/db_util.c", "db/url.c"], found[0], found[1]))
        core_macros.append((macro, "1"))

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
        for proto in sorted((ROOT / SRC / "pb").glob("*.proto")):
            subprocess.run(
                [protoc, f"--proto_path={proto.parent}", f"--c_out={gen}", proto.name],
                check=True,
                cwd=proto.parent,
            )
        for ext in self.extensions:
            if ext.name == f"feast_sqlreg.{CORE}":  # the backends parse no protobuf
                ext.include_dirs.append(str(gen))
                ext.sources += [str(p) for p in sorted(gen.glob("*.pb-c.c"))]
            # A build of another ABI left in build/lib (say a .cpython-311
            # file from before the abi3 one) would go into the wheel too,
            # and be imported first.
            target = Path(self.get_ext_fullpath(ext.name))
            stem = target.name.split(".")[0]
            for old in target.parent.glob(f"{stem}.*"):
                if old != target and old.suffix in (".so", ".pyd"):
                    old.unlink()
        super().run()


class BuildPy(build_py):
    """Puts the .pth hook at the root of site-packages."""

    def run(self):
        super().run()
        self.copy_file(str(ROOT / PTH), str(Path(self.build_lib) / PTH))


def extension(name, sources, macros, cflags, libs):
    return Extension(
        f"feast_sqlreg.{name}",
        sources=[f"{SRC}/{s}" for s in sources],
        include_dirs=[SRC],
        # Every header: a module whose sources did not change but whose
        # headers did (say DB_DRIVER_ABI in db.h) is rebuilt, not left to
        # refuse to load at run time.
        depends=sorted(str(h.relative_to(ROOT)) for h in (ROOT / SRC).rglob("*.h")),
        define_macros=macros,
        extra_compile_args=WARNINGS + cflags + env_cflags,
        extra_link_args=libs + env_libs + ["-pthread"],
        py_limited_api=True,
    )


setup(
    ext_modules=[extension(CORE, CORE_SOURCES, core_macros, cflags, libs)]
    + [extension(m, srcs, macros, c, l) for m, srcs, c, l in backends],
    cmdclass={"build_ext": BuildExt, "build_py": BuildPy},
    options={"bdist_wheel": {"py_limited_api": "cp310"}},
)
