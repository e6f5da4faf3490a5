"""A small sqllogictest runner (the subset DuckDB's own tests use) over the duckdb wheel.

Records are separated by blank lines:
    statement ok | statement error [---- expected message substring or <REGEX>:pattern]
    query <column types> [nosort|rowsort|valuesort]  SQL ---- tab-separated rows
    require hnsw        load the extension now and after every restart
    load <db path>      (re)open a database file;  restart   close and reopen it
    loop <var> <start> <end> ... endloop;  foreach <var> <values...> ... endloop
    # comment
Substitutions: __TEST_DIR__ (a fresh directory per file), ${var} inside loops.
Numbers in results compare with a relative tolerance of 1e-5, everything else exactly; an
expected cell `<REGEX>:p` must match the regular expression p, `<!REGEX>:p` must not.
"""
import math
import pathlib
import re
import shutil
import tempfile

import duckdb

NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|inf|nan)")


class SqlTestFailure(Exception):
    """A record did not behave as written; the message says where and how."""


class Record:
    def __init__(self, line, header, sql, expected):
        self.line, self.header, self.sql, self.expected = line, header, sql, expected


def parse(text):
    """Split a test file into records (header words, SQL, expected lines)."""
    records, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        raw = lines[i].rstrip("\n")
        if not raw.strip() or raw.lstrip().startswith("#"):
            i += 1
            continue
        start, header = i + 1, raw.split()
        i += 1
        sql, expected = [], None
        if header[0] in ("statement", "query"):
            while i < len(lines) and lines[i].strip() and lines[i].strip() != "----":
                sql.append(lines[i])
                i += 1
            if i < len(lines) and lines[i].strip() == "----":
                i += 1
                expected = []
                while i < len(lines) and lines[i].strip():
                    expected.append(lines[i])
                    i += 1
        records.append(Record(start, header, "\n".join(sql), expected))
    return records


def format_value(v):
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(format_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"'{k}': {format_value(x)}" for k, x in v.items()) + "}"
    return str(v)


def cells_match(actual, expected):
    """Equal text, with numbers compared to 1e-5 relative (1e-6 absolute near zero).
    An expected cell `<REGEX>:pattern` must match, `<!REGEX>:pattern` must not."""
    if expected.startswith("<REGEX>:"):
        return re.search(expected[len("<REGEX>:") :], actual, re.S) is not None
    if expected.startswith("<!REGEX>:"):
        return re.search(expected[len("<!REGEX>:") :], actual, re.S) is None
    if actual == expected:
        return True
    a_nums, e_nums = NUMBER.findall(actual), NUMBER.findall(expected)
    if len(a_nums) != len(e_nums) or NUMBER.sub("#", actual) != NUMBER.sub("#", expected):
        return False
    for a, e in zip(a_nums, e_nums):
        fa, fe = float(a), float(e)
        if math.isnan(fa) and math.isnan(fe):
            continue
        if not math.isclose(fa, fe, rel_tol=1e-5, abs_tol=1e-6):
            return False
    return True


class Runner:
    def __init__(self, path, extension):
        self.path = pathlib.Path(path)
        self.extension = str(extension)
        self.tmp = pathlib.Path(tempfile.mkdtemp(prefix="hnsw-sqltest-"))
        self.db = ":memory:"
        self.load_extension = False
        self.con = None

    def fail(self, rec, msg):
        raise SqlTestFailure(f"{self.path}:{rec.line}: {msg}\n--- SQL ---\n{rec.sql}")

    def connect(self):
        if self.con is not None:
            self.con.close()
        self.con = duckdb.connect(self.db, config={"allow_unsigned_extensions": "true"})
        if self.load_extension:
            self.con.execute(f"LOAD '{self.extension}'")

    def substitute(self, text, env):
        text = text.replace("__TEST_DIR__", str(self.tmp))
        for k, v in env.items():
            text = text.replace("${" + k + "}", v)
        return text

    def run(self):
        try:
            self.connect()
            self.execute(parse(self.path.read_text()), {})
        finally:
            if self.con is not None:
                self.con.close()
            shutil.rmtree(self.tmp, ignore_errors=True)

    def execute(self, records, env):
        i = 0
        while i < len(records):
            rec = records[i]
            kind = rec.header[0]
            if kind in ("loop", "foreach"):
                depth, j = 1, i + 1
                while j < len(records) and depth:
                    if records[j].header[0] in ("loop", "foreach"):
                        depth += 1
                    elif records[j].header[0] == "endloop":
                        depth -= 1
                    j += 1
                if depth:
                    self.fail(rec, "loop without endloop")
                body, var = records[i + 1 : j - 1], rec.header[1]
                if kind == "loop":
                    values = [str(n) for n in range(int(rec.header[2]), int(rec.header[3]))]
                else:
                    values = rec.header[2:]
                for value in values:
                    self.execute(body, {**env, var: value})
                i = j
                continue
            self.step(rec, env)
            i += 1

    def step(self, rec, env):
        kind = rec.header[0]
        sql = self.substitute(rec.sql, env)
        if kind == "require":
            if rec.header[1:] != ["hnsw"]:
                self.fail(rec, f"unsupported require {rec.header[1:]}")
            self.load_extension = True
            self.con.execute(f"LOAD '{self.extension}'")
        elif kind == "load":
            self.db = self.substitute(rec.header[1], env)
            self.connect()
        elif kind == "restart":
            self.connect()
        elif kind == "statement":
            self.statement(rec, sql)
        elif kind == "query":
            self.query(rec, sql)
        else:
            self.fail(rec, f"unknown record type {kind!r}")

    def statement(self, rec, sql):
        mode = rec.header[1] if len(rec.header) > 1 else "ok"
        try:
            self.con.execute(sql).fetchall()
        except duckdb.Error as e:
            if mode == "ok":
                self.fail(rec, f"statement failed: {e}")
            if rec.expected:
                want = "\n".join(rec.expected).strip()
                if want.startswith("<REGEX>:"):
                    if not re.search(want[len("<REGEX>:") :], str(e), re.S):
                        self.fail(rec, f"error {e!s} does not match /{want[8:]}/")
                elif want not in str(e):
                    self.fail(rec, f"error message\n  {e!s}\ndoes not contain\n  {want}")
            return
        if mode == "error":
            self.fail(rec, "statement succeeded but an error was expected")

    def query(self, rec, sql):
        types = rec.header[1] if len(rec.header) > 1 else ""
        sort = rec.header[2] if len(rec.header) > 2 else "nosort"
        try:
            result = self.con.execute(sql)
            rows = result.fetchall()
            ncols = len(result.description)
        except duckdb.Error as e:
            self.fail(rec, f"query failed: {e}")
        if ncols != len(types):
            self.fail(rec, f"query has {ncols} columns, header says {len(types)} ({types})")
        actual = [[format_value(v) for v in row] for row in rows]
        expected = [line.split("\t") for line in (rec.expected or [])]
        if sort == "rowsort":
            actual.sort()
            expected.sort()
        elif sort == "valuesort":
            actual = sorted([[v] for row in actual for v in row])
            expected = sorted([[v] for row in expected for v in row])
        ok = len(actual) == len(expected) and all(
            len(a) == len(e) and all(cells_match(x, y) for x, y in zip(a, e)) for a, e in zip(actual, expected)
        )
        if not ok:
            show = lambda rows: "\n".join("\t".join(r) for r in rows[:40]) or "(no rows)"
            self.fail(rec, f"wrong result\n--- expected ---\n{show(expected)}\n--- actual ---\n{show(actual)}")
