#!/usr/bin/env python3
"""Build (once per DuckDB version) and locate DuckDB's static archive and headers.

The version is the environment's DUCKDB_VERSION, else the file DUCKDB_VERSION (the default);
SUPPORTED below is the one list of supported versions. The DuckDB source tree comes from the
`libduckdb-sys` crate (`duckdb.tar.gz`, fetched through cargo) when a crate release bundles the
version, and otherwise from the `duckdb` source distribution on PyPI (its `external/duckdb` is
the release's full tree, built with DuckDB's own CMake). The archive is cached outside the work
tree because it takes ~30-40 minutes to compile on 2 cores. Usage (standard library only, run
by the Makefile with the system python3):
    python3 scripts/build/duckdb_static.py build           build the archive if it is missing (resumable)
    python3 scripts/build/duckdb_static.py include         print the include directory (fetches sources only)
    python3 scripts/build/duckdb_static.py archive         print the archive path (fails if not built)
    python3 scripts/build/duckdb_static.py archive-path    print where the archive is (or will be) cached
    python3 scripts/build/duckdb_static.py versions        print the supported versions, default first
    python3 scripts/build/duckdb_static.py default         print the default version
"""
import hashlib
import json
import os
import shutil
import pathlib
import subprocess
import sys
import tarfile
import time
from concurrent.futures import ThreadPoolExecutor

ROOT = pathlib.Path(__file__).resolve().parents[2]  # this file is ROOT/scripts/build/duckdb_static.py
DEFAULT = (ROOT / "DUCKDB_VERSION").read_text().strip()
# Supported DuckDB releases: version -> the source id its wheels report (`PRAGMA version`),
# which a build from the source distribution (no git history) must be told.
SUPPORTED = {"2.0.1": "8d78114e90", "2.0.0": "d54cbbe3df", "1.5.6": "069cc9f9b5", "1.5.5": "d8cdaa33fd"}
VERSION = os.environ.get("DUCKDB_VERSION") or DEFAULT
if VERSION not in SUPPORTED:
    sys.exit(f"DuckDB {VERSION} is not supported: expected one of {', '.join(SUPPORTED)}")
MAJOR, MINOR, PATCH = (int(p) for p in VERSION.split("."))
# libduckdb-sys encodes DuckDB X.Y.Z as crate 1.(X*10000 + Y*100 + Z).
CRATE_REQ = f"~1.{MAJOR * 10000 + MINOR * 100 + PATCH}"
CACHE = pathlib.Path(os.environ.get("HNSW_CACHE_DIR", pathlib.Path.home() / ".cache" / "hnsw-duckdb"))
WORK = CACHE / f"duckdb-v{VERSION}"
SRC = WORK / "src"
OBJ = WORK / "obj"
ARCHIVE = WORK / "libduckdb_static.a"
PYPI_SIMPLE = "https://pypi.org/simple/duckdb/"
# The extensions the static DuckDB carries, as the crate's and the wheel's builds do.
EXTENSIONS = "core_functions;parquet;json"
DEFINES = ["-DNDEBUG", "-DDUCKDB_EXTENSION_AUTOLOAD_DEFAULT=1", "-DDUCKDB_EXTENSION_AUTOINSTALL_DEFAULT=1"]
CXXFLAGS = ["-std=c++17", "-O2", "-fPIC", "-g0", "-w", "-ffunction-sections", "-fdata-sections"]


def log(msg):
    """Prints a progress line to stderr (stdout carries the printed paths the Makefile reads)."""
    print(f"[duckdb-static] {msg}", file=sys.stderr, flush=True)


def crate_dir():
    """Fetch the pinned libduckdb-sys crate through cargo and return its source directory."""
    fetch = WORK / "fetch"
    (fetch / "src").mkdir(parents=True, exist_ok=True)
    (fetch / "src" / "lib.rs").write_text("")
    (fetch / "Cargo.toml").write_text(
        '[package]\nname = "duckdb-source-fetch"\nversion = "0.0.0"\nedition = "2021"\n'
        f'[dependencies]\nlibduckdb-sys = "{CRATE_REQ}"\n'
    )
    if subprocess.run(["cargo", "fetch", "--quiet"], cwd=fetch, capture_output=True).returncode != 0:
        return None  # no libduckdb-sys release for this version
    meta = json.loads(
        subprocess.run(
            ["cargo", "metadata", "--format-version", "1"], cwd=fetch, check=True, capture_output=True, text=True
        ).stdout
    )
    for pkg in meta["packages"]:
        if pkg["name"] == "libduckdb-sys":
            path = pathlib.Path(pkg["manifest_path"]).parent
            release = path / ".duckdb-release"  # newer crates name the bundled release here
            if release.exists() and f"DUCKDB_RELEASE_VERSION=v{VERSION}" not in release.read_text():
                return None
            return path
    return None


def download_sdist():
    """Downloads duckdb-VERSION.tar.gz from PyPI's simple index, checking its sha256."""
    import urllib.request

    name = f"duckdb-{VERSION}.tar.gz"
    request = urllib.request.Request(PYPI_SIMPLE, headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        files = json.load(response)["files"]
    entry = next((f for f in files if f["filename"] == name), None)
    if entry is None:
        sys.exit(f"PyPI has no source distribution {name}")
    target = WORK / name
    log(f"downloading {entry['url']}")
    with urllib.request.urlopen(entry["url"], timeout=300) as response:
        data = response.read()
    digest = hashlib.sha256(data).hexdigest()
    if digest != entry["hashes"]["sha256"]:
        sys.exit(f"{name}: sha256 {digest}, expected {entry['hashes']['sha256']}")
    target.write_bytes(data)
    return target


def unpack():
    """Unpacks the version's sources into the cache once; returns (tree root, origin: crate|sdist)."""
    stamp = SRC / ".unpacked"
    if not stamp.exists():
        crate = crate_dir()
        tarball = crate / "duckdb.tar.gz" if crate else download_sdist()
        log(f"unpacking {tarball}")
        shutil.rmtree(SRC, ignore_errors=True)
        SRC.mkdir(parents=True, exist_ok=True)
        with tarfile.open(tarball) as tar:
            if crate:
                tar.extractall(SRC)
            else:  # only the DuckDB tree of the Python package
                prefix = f"duckdb-{VERSION}/external/duckdb/"
                members = [m for m in tar.getmembers() if m.name.startswith(prefix)]
                for member in members:
                    member.name = "duckdb/" + member.name[len(prefix):]
                tar.extractall(SRC, members=members)
        pragma = SRC / "duckdb" / "src" / "function" / "table" / "version" / "pragma_version.cpp"
        if crate and f'#define DUCKDB_VERSION "v{VERSION}"' not in pragma.read_text():
            sys.exit(f"{tarball} does not hold DuckDB v{VERSION} (see {pragma})")
        stamp.write_text("crate" if crate else "sdist")
    origin = stamp.read_text().strip()
    return SRC / "duckdb", "sdist" if origin == "sdist" else "crate"  # older caches wrote the version


def tool(name):
    """The path of cmake or ninja: on PATH, else from a venv in the cache (PyPI wheels)."""
    found = shutil.which(name)
    if found:
        return found
    tools = CACHE / "tools"
    if not (tools / "bin" / name).exists():
        log(f"installing {name} from PyPI into {tools}")
        subprocess.run([sys.executable, "-m", "venv", str(tools)], check=True)
        subprocess.run([str(tools / "bin" / "pip"), "install", "--quiet", "cmake", "ninja"], check=True)
    return str(tools / "bin" / name)


def compile_one(args):
    """Compiles one DuckDB source unless its object exists; returns the compiler's error, or None."""
    source, obj, includes = args
    if obj.exists():
        return None
    tmp = obj.with_suffix(".tmp.o")
    cmd = ["g++", *CXXFLAGS, *DEFINES, *includes, "-c", str(source), "-o", str(tmp)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        return f"{source}:\n{proc.stderr[-4000:]}"
    tmp.rename(obj)
    return None


def build():
    """Builds the archive unless cached: the crate's manifest, or DuckDB's CMake for a source distribution."""
    if ARCHIVE.exists():
        log(f"cached: {ARCHIVE}")
        return
    tree, origin = unpack()
    if origin == "crate":
        build_manifest(tree)
    else:
        build_cmake(tree)


def build_cmake(tree):
    """Builds duckdb_static with its extensions through DuckDB's CMake, then merges every static
    library the build produced into the one archive the Makefile links."""
    out = WORK / "cmake"
    workers = int(os.environ.get("HNSW_JOBS", os.cpu_count() or 2))
    start = time.time()
    env = dict(os.environ, DUCKDB_VERSION="")  # DuckDB's CMake reads DUCKDB_VERSION too: pass it explicitly
    subprocess.run(
        [tool("cmake"), "-S", str(tree), "-B", str(out), "-G", "Ninja", f"-DCMAKE_MAKE_PROGRAM={tool('ninja')}",
         "-DCMAKE_BUILD_TYPE=Release", f"-DBUILD_EXTENSIONS={EXTENSIONS}", "-DBUILD_SHELL=0", "-DBUILD_UNITTESTS=0",
         "-DBUILD_BENCHMARKS=0", "-DENABLE_EXTENSION_AUTOLOADING=1", "-DENABLE_EXTENSION_AUTOINSTALL=1",
         "-DCMAKE_POSITION_INDEPENDENT_CODE=ON", f"-DOVERRIDE_GIT_DESCRIBE=v{VERSION}",
         f"-DGIT_COMMIT_HASH={SUPPORTED[VERSION]}", "-DCMAKE_CXX_FLAGS=-g0 -ffunction-sections -fdata-sections",
         "-DCMAKE_C_FLAGS=-g0 -ffunction-sections -fdata-sections"],
        check=True, env=env, stdout=subprocess.DEVNULL)
    log(f"compiling DuckDB {VERSION} with CMake and {workers} jobs (takes ~30-40 min on 2 cores)")
    subprocess.run([tool("ninja"), "-C", str(out), f"-j{workers}", "duckdb_static"], check=True, env=env)
    libraries = sorted(str(p) for p in out.rglob("*.a"))
    script = f"CREATE {ARCHIVE.with_suffix('.tmp.a')}\n" + "".join(f"ADDLIB {lib}\n" for lib in libraries) + "SAVE\nEND\n"
    ARCHIVE.with_suffix(".tmp.a").unlink(missing_ok=True)
    subprocess.run(["ar", "-M"], input=script, text=True, check=True)
    ARCHIVE.with_suffix(".tmp.a").rename(ARCHIVE)
    log(f"built {ARCHIVE} from {len(libraries)} libraries in {time.time() - start:.0f}s")


def build_manifest(tree):
    """Compiles every DuckDB source of the crate's manifest in parallel and archives the objects."""
    manifest = json.loads((tree / "manifest.json").read_text())["base"]
    includes = [f"-I{tree}"] + [f"-I{tree / d}" for d in sorted(manifest["include_dirs"])]
    files = sorted(manifest["cpp_files"])
    OBJ.mkdir(parents=True, exist_ok=True)
    jobs = []
    for rel in files:
        source = SRC / rel
        obj = OBJ / (rel.replace("/", "__") + ".o")
        jobs.append((source, obj, includes))
    todo = sum(1 for _, o, _ in jobs if not o.exists())
    workers = int(os.environ.get("HNSW_JOBS", os.cpu_count() or 2))
    log(f"compiling {todo} of {len(jobs)} DuckDB {VERSION} sources with {workers} jobs (takes ~40 min on 2 cores)")
    start = time.time()
    done = 0
    with ThreadPoolExecutor(workers) as pool:
        for err in pool.map(compile_one, jobs):
            if err:
                sys.exit(f"compile failed: {err}")
            done += 1
            if done % 20 == 0:
                log(f"{done}/{len(jobs)} ({time.time() - start:.0f}s)")
    tmp = ARCHIVE.with_suffix(".tmp.a")
    tmp.unlink(missing_ok=True)
    subprocess.run(["ar", "rcs", str(tmp), *(str(o) for _, o, _ in jobs)], check=True)
    tmp.rename(ARCHIVE)
    log(f"built {ARCHIVE} in {time.time() - start:.0f}s")


def main():
    """Runs the subcommand named on the command line (default: build)."""
    cmd = sys.argv[1] if len(sys.argv) > 1 else "build"
    if cmd == "build":
        build()
        print(ARCHIVE)
    elif cmd == "include":
        print(unpack()[0] / "src" / "include")
    elif cmd == "archive-path":
        print(ARCHIVE)
    elif cmd == "archive":
        if not ARCHIVE.exists():
            sys.exit(f"{ARCHIVE} missing: run `{sys.argv[0]} build`")
        print(ARCHIVE)
    elif cmd == "versions":
        print(" ".join([DEFAULT] + [v for v in SUPPORTED if v != DEFAULT]))
    elif cmd == "default":
        print(DEFAULT)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
