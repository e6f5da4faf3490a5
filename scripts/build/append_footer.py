#!/usr/bin/env python3
"""Append DuckDB's 512-byte extension metadata footer to a shared object.

Footer: eight 32-byte NUL-padded fields, then a 256-byte signature (zeros: unsigned).
Field order in the file: three unused, ABI type, extension version, DuckDB version,
platform, magic value "4" (DuckDB reads them in reverse).
"""
import argparse
import pathlib

FIELD = 32


def field(text: str) -> bytes:
    """One footer field: the text NUL-padded to FIELD bytes."""
    raw = text.encode()
    if len(raw) > FIELD:
        raise SystemExit(f"footer field {text!r} is longer than {FIELD} bytes")
    return raw.ljust(FIELD, b"\0")


def footer(ext_version: str, duckdb_version: str, platform: str, abi: str = "CPP") -> bytes:
    """The 512-byte footer: the eight fields in file order, then an all-zero signature."""
    fields = [field(""), field(""), field(""), field(abi), field(ext_version), field(duckdb_version),
              field(platform), field("4")]
    return b"".join(fields) + b"\0" * 256


def main():
    """Appends the footer to the shared object named on the command line."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("path", type=pathlib.Path)
    p.add_argument("--extension-version", required=True)
    p.add_argument("--duckdb-version", required=True, help="e.g. v2.0.0")
    p.add_argument("--platform", default="linux_amd64")
    a = p.parse_args()
    data = a.path.read_bytes()
    a.path.write_bytes(data + footer(a.extension_version, a.duckdb_version, a.platform))


if __name__ == "__main__":
    main()
