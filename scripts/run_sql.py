"""Runs a SQL script on a DuckDB database from Python, for the scripts in sql/ (the DuckDB 2.0 CLI is
not on PyPI, the duckdb Python package is):

    .venv/bin/python -m scripts.run_sql DATABASE FILE.sql [--extension PATH] [--cmd SQL]... [--max-rows N]
                                        [--width N]

DATABASE is a file (created if missing) or :memory:. The statements run in order on one connection
(allow_unsigned_extensions on, each statement autocommitted as in the CLI); every result with rows
is printed as an aligned table, and each statement's wall time after it. `LOAD hnsw` loads the
installed extension, or, when hnsw is not installed in this DuckDB, the --extension file (default
build/release/hnsw.duckdb_extension). The first failing statement stops the run: its number, line
and text and DuckDB's error go to stderr, and the exit code is 1. Relative paths in the script
(e.g. 'executions.parquet') are relative to the working directory, as in the CLI (run from the
repository root, where `scripts` imports, or with it on PYTHONPATH). --cmd runs SQL before the
file, like the CLI's -cmd (its statements are numbered "cmd 1", "cmd 2", ...):

    .venv/bin/python -m scripts.run_sql :memory: sql/00_executions_parquet.sql --cmd "SET VARIABLE executions_rows=4000"
    .venv/bin/python -m scripts.run_sql learning.duckdb sql/01_learning_database.sql
    .venv/bin/python -m scripts.run_sql learning.duckdb sql/03_benchmark.sql
"""
import argparse
import dataclasses
import decimal
import pathlib
import re
import sys
import time

import duckdb

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXTENSION = ROOT / "build" / "release" / "hnsw.duckdb_extension"
DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")  # opens and closes a $tag$...$tag$ string
LOAD_HNSW = re.compile(r"""LOAD\s+(hnsw|'hnsw'|"hnsw")""", re.IGNORECASE)
NUMBERS = (int, float, decimal.Decimal)
CHANGES = {duckdb.StatementType.INSERT, duckdb.StatementType.UPDATE, duckdb.StatementType.DELETE,
           duckdb.StatementType.COPY, duckdb.StatementType.CREATE, duckdb.StatementType.DROP,
           duckdb.StatementType.ALTER}


class ScriptError(Exception):
    """A statement that failed: the message names it (number, line, text) and carries DuckDB's error."""


@dataclasses.dataclass
class Statement:
    number: int | str  # 1-based position among the script's statements ("cmd N" for --cmd ones)
    line: int  # the line its first token is on
    text: str  # from its first token up to (not including) the ';', comments inside kept

    def summary(self, width=100):
        """The statement on one line, shortened to width characters."""
        flat = " ".join(self.text.split())
        return flat if len(flat) <= width else flat[: width - 1] + "…"


def split_statements(text):
    """The script's statements in order: split at ';' outside '...' and E'...' strings, "..." identifiers,
    $tag$...$tag$ strings, -- and (nested) /* */ comments; comment-only pieces are not statements."""
    statements = []
    start = None  # index of the current statement's first token
    i, n = 0, len(text)

    def finish(end):
        if start is not None:
            statements.append(Statement(len(statements) + 1, text.count("\n", 0, start) + 1, text[start:end].strip()))

    while i < n:
        c = text[i]
        if c == "-" and text.startswith("--", i):
            newline = text.find("\n", i)
            i = n if newline < 0 else newline + 1
            continue
        if c == "/" and text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
            continue
        if c.isspace():
            i += 1
            continue
        if c == ";":
            finish(i)
            start = None
            i += 1
            continue
        if start is None:
            start = i
        if c in "'\"":
            # E'...' strings end at a quote not escaped by a backslash; all quoted text ends at a lone quote.
            backslash = c == "'" and i > 0 and text[i - 1] in "eE" and (i < 2 or not (text[i - 2].isalnum()
                                                                                     or text[i - 2] == "_"))
            i += 1
            while i < n:
                if backslash and text[i] == "\\":
                    i += 2
                elif text[i] == c:
                    if text.startswith(c * 2, i):
                        i += 2
                    else:
                        break
                else:
                    i += 1
            i += 1
            continue
        if c == "$":
            tag = DOLLAR_TAG.match(text, i)
            if tag and not (i > 0 and (text[i - 1].isalnum() or text[i - 1] == "_")):
                close = text.find(tag.group(0), i + len(tag.group(0)))
                i = n if close < 0 else close + len(tag.group(0))
                continue
        i += 1
    finish(n)
    return statements


def format_value(value, width):
    """A value as the CLI shows it: NULL, true/false, lists and structs spelled out, cut to width characters."""
    if value is None:
        text = "NULL"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float):
        text = f"{value:.6g}"
    elif isinstance(value, (list, tuple)):
        text = "[" + ", ".join(format_value(v, width) for v in value) + "]"
    elif isinstance(value, dict):
        text = "{" + ", ".join(f"{k}: {format_value(v, width)}" for k, v in value.items()) + "}"
    else:
        text = str(value)
    text = " ".join(text.split()) if "\n" in text else text
    return text if len(text) <= width else text[: width - 1] + "…"


def format_table(columns, rows, max_rows=40, width=60):
    """Rows under their column names, columns aligned (numbers to the right); at most max_rows rows."""
    shown = rows[:max_rows]
    cells = [[format_value(v, width) for v in row] for row in shown]
    widths = [max([len(name)] + [len(row[j]) for row in cells]) for j, name in enumerate(columns)]
    numeric = [bool(shown) and all(row[j] is None or (isinstance(row[j], NUMBERS) and not isinstance(row[j], bool))
                                   for row in shown) for j in range(len(columns))]

    def line(values):
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)).rstrip()

    lines = [line(columns), "  ".join("-" * w for w in widths)] + [line(row) for row in cells]
    if len(rows) > len(shown):
        lines.append(f"… {len(rows) - len(shown)} more rows")
    return "\n".join(lines)


def changes_rows(sql):
    """Whether the statement is one whose only result is a count of changed rows (INSERT, CREATE TABLE AS,
    COPY, ...): DuckDB answers those with one 'Count' column, which the runner reports on the time line."""
    try:
        parsed = duckdb.extract_statements(sql)
    except duckdb.Error:
        return False  # the statement will fail when run, and say why
    return bool(parsed) and parsed[0].type in CHANGES


def hnsw_installed(con):
    """Whether LOAD hnsw finds the extension in this DuckDB's extension directory (or already loaded)."""
    return bool(con.execute("SELECT count(*) FROM duckdb_extensions() WHERE extension_name = 'hnsw' "
                            "AND (installed OR loaded)").fetchone()[0])


def connect(database):
    """A connection to the database that may load unsigned extensions, as `duckdb -unsigned` does."""
    return duckdb.connect(str(database), config={"allow_unsigned_extensions": "true"})


def run_statement(con, statement, extension, out, max_rows=40, width=60):
    """Runs one statement and prints its header, its rows (if it returns rows) and its wall time."""
    sql = statement.text
    note = ""
    if LOAD_HNSW.fullmatch(sql) and not hnsw_installed(con):
        if not pathlib.Path(extension).exists():
            raise ScriptError(f"statement {statement.number} (line {statement.line}): {statement.summary()}\n"
                              f"hnsw is not installed in DuckDB {duckdb.__version__} and the extension file "
                              f"{extension} does not exist: build it or pass --extension")
        sql = "LOAD '" + str(extension).replace("'", "''") + "'"
        note = f"  (hnsw not installed: loaded {extension})"
    print(f"[{statement.number}] line {statement.line}: {statement.summary()}", file=out, flush=True)
    start = time.perf_counter()
    try:
        result = con.execute(sql)
        columns = [d[0] for d in result.description or []]
        rows = result.fetchall() if columns else []
    except duckdb.Error as error:
        raise ScriptError(f"statement {statement.number} (line {statement.line}) failed:\n{statement.text}\n"
                          f"{error}") from error
    seconds = time.perf_counter() - start
    took = f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"
    if columns == ["Success"] or (columns == ["Count"] and changes_rows(sql)):
        # Statements that return no data (SET, CHECKPOINT, CREATE INDEX) or only a count of changed rows.
        changed = f"{rows[0][0]} rows changed, " if columns == ["Count"] and rows else ""
        print(f"({changed}{took}){note}\n", file=out, flush=True)
    elif columns:
        print(format_table(columns, rows, max_rows, width), file=out)
        print(f"({len(rows)} row{'' if len(rows) == 1 else 's'}, {took})\n", file=out, flush=True)
    else:
        print(f"({took}){note}\n", file=out, flush=True)


def run_script(database, path, extension=EXTENSION, out=sys.stdout, max_rows=40, width=60, commands=()):
    """Runs the commands' statements, then every statement of the file, on one new connection to database,
    in order; raises ScriptError at the first failure. Returns the number of the file's statements run."""
    statements = split_statements(pathlib.Path(path).read_text())
    con = connect(database)
    try:
        for command in commands:
            for statement in split_statements(command):
                statement.number = f"cmd {statement.number}"
                run_statement(con, statement, extension, out, max_rows, width)
        for statement in statements:
            run_statement(con, statement, extension, out, max_rows, width)
    finally:
        con.close()
    return len(statements)


def main():
    """Parses arguments and runs the script, exiting with 1 and the failing statement on an error."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("database", help="database file (created if missing) or :memory:")
    ap.add_argument("file", help="SQL script to run")
    ap.add_argument("--extension", default=str(EXTENSION),
                    help="hnsw.duckdb_extension to LOAD when hnsw is not installed (default: %(default)s)")
    ap.add_argument("--cmd", action="append", default=[], metavar="SQL",
                    help="SQL to run before the file, e.g. SET VARIABLE ... (repeatable)")
    ap.add_argument("--max-rows", type=int, default=40, help="rows printed per result (default: %(default)s)")
    ap.add_argument("--width", type=int, default=60, help="characters printed per value (default: %(default)s)")
    args = ap.parse_args()
    if not pathlib.Path(args.file).is_file():
        sys.exit(f"run_sql: no such file: {args.file}")
    start = time.perf_counter()
    try:
        count = run_script(args.database, args.file, args.extension, sys.stdout, args.max_rows, args.width,
                           args.cmd)
    except ScriptError as error:
        sys.stdout.flush()
        sys.exit(f"run_sql: {args.file}: {error}")
    print(f"{args.file}: {count} statements in {time.perf_counter() - start:.2f} s")


if __name__ == "__main__":
    main()
