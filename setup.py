"""Build of feast_sqlreg's C extensions: the core (_sqlregistry) and one
module per optional backend (_backend_pg, _backend_mysql).

Libraries are found with pkg-config (override with the environment variables
FEAST_SQLREG_CFLAGS / FEAST_SQLREG_LDFLAGS); the protobuf-c sources are
generated from the .proto files src/SOURCES lists, with protoc-c at build
time, so the sdist carries only what we wrote. src/SOURCES is the one list
of each module's sources. A .pth file is installed next to the package:
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


def read_sources(path):
    """{module: [paths under src/]} from src/SOURCES, the one list of
    sources (its header says the format), in the list's order."""
    modules = {}
    for line in path.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        module, sep, files = line.partition(":")
        if not sep or not module.strip():
            raise SystemExit(f"{path}: not a 'module: files' line: {line!r}")
        modules.setdefault(module.strip(), []).extend(files.split())
    return modules


SOURCES = read_sources(ROOT / SRC / "SOURCES")
# The .proto files of each module, which BuildExt compiles into it.
PROTOS = {m: [s for s in srcs if s.endswith(".proto")] for m, srcs in SOURCES.items()}
cflags, libs = [], []
for names, apt in [
    (["sqlite3"], "libsqlite3-dev"),
    (["libprotobuf-c"], "libprotobuf-c-dev protobuf-c-compiler"),
    (["libnghttp2"], "libnghttp2-dev"),
    # TLS of the registry server's native front (src/front/front.c).
    (["openssl"], "libssl-dev"),
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
for module, names, macro in [
    ("_backend_pg", ["libpq"], "FEAST_SQLREG_HAVE_PG"),
    # MariaDB Connector/C (Debian's libmysqlclient); Oracle's client library
    # is not built against: its code paths have never run here.
    ("_backend_mysql", ["libmariadb"], "FEAST_SQLREG_HAVE_MYSQL"),
]:
    sources = SOURCES.get(module, [])
    if sources and all((ROOT / SRC / s).exists() for s in sources):
        found = library(names)
        if found is None:
            raise SystemExit(f"{sources[0]} needs one of {names} via pkg-config")
        backends.append((module, sources, found[0], found[1]))
        core_macros.append((macro, "1"))

WARNINGS = [
    "-std=c11",
    "-Wall",
    "-Wextra",
    "-Wmissing-prototypes",
    "-Wshadow",
    "-Wstrict-prototypes",
    # A function the client library's headers lack (an older library, as
    # in Debian 11) is an error here, not an undefined symbol at import.
    "-Werror=implicit-function-declaration",
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
        for ext in self.extensions:
            protos = [ROOT / SRC / s for s in PROTOS.get(ext.name.rsplit(".", 1)[1], [])]
            for proto in protos:
                subprocess.run(
                    [protoc, f"--proto_path={proto.parent}", f"--c_out={gen}", proto.name],
                    check=True,
                    cwd=proto.parent,
                )
            if protos:  # the core's; the backends parse no protobuf
                ext.include_dirs.append(str(gen))
                ext.sources += [str(gen / f"{p.stem}.pb-c.c") for p in protos]
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
        sources=[f"{SRC}/{s}" for s in sources if s.endswith(".c")],
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
    ext_modules=[extension(CORE, SOURCES[CORE], core_macros, cflags, libs)]
    + [extension(m, srcs, macros, c, l) for m, srcs, c, l in backends],
    cmdclass={"build_ext": BuildExt, "build_py": BuildPy},
    options={"bdist_wheel": {"py_limited_api": "cp310"}},
)
