#!/usr/bin/env python3
"""Build (once per DuckDB version) and locate DuckDB's static archive and headers.

The DuckDB source tree comes from the `libduckdb-sys` crate (`duckdb.tar.gz`), fetched
through cargo; the archive is cached outside the work tree because it takes ~40 minutes
to compile on 2 cores. Usage (standard library only, run by the Makefile with the system python3):
    python3 scripts/build/duckdb_static.py build           build the archive if it is missing (resumable)
    python3 scripts/build/duckdb_static.py include         print the include directory (fetches sources only)
    python3 scripts/build/duckdb_static.py archive         print the archive path (fails if not built)
    python3 scripts/build/duckdb_static.py archive-path    print where the archive is (or will be) cached
    python3 scripts/build/duckdb_static.py crate-dir       print the unpacked crate directory
"""
import json
import os
import pathlib
import subprocess
import sys
import tarfile
import time
from concurrent.futures import ThreadPoolExecutor

ROOT = pathlib.Path(__file__).resolve().parents[2]  # this file is ROOT/scripts/build/duckdb_static.py
VERSION = (ROOT / "DUCKDB_VERSION").read_text().strip()
MAJOR, MINOR, PATCH = (int(p) for p in VERSION.split("."))
# libduckdb-sys encodes DuckDB X.Y.Z as crate 1.(X*10000 + Y*100 + Z).
CRATE_REQ = f"~1.{MAJOR * 10000 + MINOR * 100 + PATCH}"
CACHE = pathlib.Path(os.environ.get("HNSW_CACHE_DIR", pathlib.Path.home() / ".cache" / "hnsw-duckdb"))
WORK = CACHE / f"duckdb-v{VERSION}"
SRC = WORK / "src"
OBJ = WORK / "obj"
ARCHIVE = WORK / "libduckdb_static.a"
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
    subprocess.run(["cargo", "fetch", "--quiet"], cwd=fetch, check=True)
    meta = json.loads(
        subprocess.run(
            ["cargo", "metadata", "--format-version", "1"], cwd=fetch, check=True, capture_output=True, text=True
        ).stdout
    )
    for pkg in meta["packages"]:
        if pkg["name"] == "libduckdb-sys":
            path = pathlib.Path(pkg["manifest_path"]).parent
            release = (path / ".duckdb-release").read_text()
            if f"DUCKDB_RELEASE_VERSION=v{VERSION}" not in release:
                sys.exit(f"libduckdb-sys {pkg['version']} does not bundle DuckDB v{VERSION}")
            return path
    sys.exit("libduckdb-sys not found in cargo metadata")


def unpack():
    """Unpack the crate's duckdb.tar.gz into the cache once; return the tree root."""
    stamp = SRC / ".unpacked"
    if not stamp.exists():
        tarball = crate_dir() / "duckdb.tar.gz"
        log(f"unpacking {tarball}")
        SRC.mkdir(parents=True, exist_ok=True)
        with tarfile.open(tarball) as tar:
            tar.extractall(SRC)
        stamp.write_text(VERSION)
    return SRC / "duckdb"


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
    """Compiles every DuckDB source of the manifest in parallel and archives the objects, unless cached."""
    if ARCHIVE.exists():
        log(f"cached: {ARCHIVE}")
        return
    tree = unpack()
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
        print(unpack() / "src" / "include")
    elif cmd == "archive-path":
        print(ARCHIVE)
    elif cmd == "archive":
        if not ARCHIVE.exists():
            sys.exit(f"{ARCHIVE} missing: run `{sys.argv[0]} build`")
        print(ARCHIVE)
    elif cmd == "crate-dir":
        print(crate_dir())
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
