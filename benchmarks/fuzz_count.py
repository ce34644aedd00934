"""Run the fuzz properties of tests/test_fuzz_*.py with many more examples; count cases and failures.

Each property's body is wrapped so that a failing case is recorded (exception type and where it
was raised) instead of stopping the search, so one run lists every distinct failure it met. A
"known" failure is one that tests/test_fuzz_*.py already pins with a strict-xfail regression test
(reported to the owners).

    .venv/bin/python benchmarks/fuzz_count.py [--examples 2000] [--only recording]
"""

from __future__ import annotations

import argparse
import functools
import inspect
import os
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))
from _common import print_table, write_json  # noqa: E402

MODULES = ("test_fuzz_parsers", "test_fuzz_addon")


def _where(e: BaseException) -> str:
    frame = traceback.extract_tb(e.__traceback__)[-1]
    return f"{Path(frame.filename).name}:{frame.lineno}"


def run_property(test, workdir: Path) -> dict:
    """Run one @given test (its example count comes from the environment); count calls and failures."""
    calls = [0]
    failures: Counter[str] = Counter()
    first_input: dict[str, str] = {}
    inner = test.hypothesis.inner_test

    @functools.wraps(inner)
    def counting(*args, **kwargs):
        calls[0] += 1
        try:
            return inner(*args, **kwargs)
        except Exception as e:  # noqa: BLE001 - recorded, and the search goes on
            key = f"{type(e).__name__} at {_where(e)}"
            failures[key] += 1
            first_input.setdefault(key, repr(kwargs)[:300])

    test.hypothesis.inner_test = counting
    kwargs = {"work": workdir} if "work" in inspect.signature(inner).parameters else {}
    start = time.perf_counter()
    try:
        test(**kwargs)
    except Exception as e:  # noqa: BLE001 - a broken strategy: report it, run the others
        failures[f"property error {type(e).__name__} at {_where(e)}"] += 1
    finally:
        test.hypothesis.inner_test = inner
    return {"cases": calls[0], "seconds": time.perf_counter() - start, "failures": dict(failures),
            "first_input": first_input}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=2000, help="examples per property")
    parser.add_argument("--only", default="", help="run properties whose name contains this")
    args = parser.parse_args()
    # The test modules read their example count from here when they are imported.
    os.environ["AVATAR_BRIDGE_FUZZ_EXAMPLES"] = str(args.examples)
    os.environ["AVATAR_BRIDGE_FUZZ_STRICT"] = "1"  # count known bugs too
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="fuzz-count-") as tmp:
        for module_name in MODULES:
            try:
                module = __import__(module_name)
            except ImportError as e:
                print(f"skipping {module_name}: {e}")
                continue
            for name, test in sorted(vars(module).items()):
                if name.startswith("test_fuzz_") and hasattr(test, "hypothesis") and args.only in name:
                    work = Path(tmp) / name
                    work.mkdir()
                    results[name.removeprefix("test_fuzz_")] = run_property(test, work)
                    r = results[name.removeprefix("test_fuzz_")]
                    print(f"{name}: {r['cases']} cases, {sum(r['failures'].values())} failing", flush=True)
    rows = []
    for name, r in results.items():
        distinct = "; ".join(f"{k} (x{n})" for k, n in r["failures"].items()) or "-"
        rows.append([name, r["cases"], sum(r["failures"].values()), r["seconds"], distinct])
    total = sum(r["cases"] for r in results.values())
    rows.append(["total", total, sum(sum(r["failures"].values()) for r in results.values()),
                 sum(r["seconds"] for r in results.values()), ""])  # fmt: skip
    print_table(f"fuzzing: up to {args.examples} examples per property",
                ["property", "cases", "failing cases", "seconds", "distinct failures"], rows)  # fmt: skip
    write_json(
        "fuzz_count", {"examples_per_property": args.examples, "total_cases": total, "results": results}
    )


if __name__ == "__main__":
    main()
