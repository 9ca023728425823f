"""The README's Blender support table, generated from what `make test` ran: one JUnit XML
per Blender environment (out/test-results/blender-<major.minor>.xml, pytest --junitxml).
Never edit that table by hand.

    python -m flame_lipsync.tools.support_table [--results out/test-results] [--readme README.md]

Per run: the Blender and Python versions (the `blender_version` / `python_version`
properties tests/conftest.py records; else the file's name), the tests passed / skipped /
failed / xfailed, each feature area's result (tests grouped by file, see FEATURES) and the
skip reasons with their counts. With --readme the table replaces what stands between the
support-table markers; without it, or when the markers are missing, it goes to stdout.
"""
from __future__ import annotations

import argparse
import ast
import re
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
START, END = "<!-- support-table:start -->", "<!-- support-table:end -->"

MESH_CACHE, ANIMATOR_KEYS = "Mesh-cache bake (PC2)", "Animator keys (reduction, NLA strip per line, range re-bake)"
OPERATORS, BAD_INPUT = "UI operators and headless CLI", "Bad input, linked heads, preview movie"
# (test file, test-name prefix, feature area), first match wins; the order is the table's.
# test_bake.py holds both bake modes, so its mesh-cache tests are told apart by name.
FEATURES = [
    ("test_strip_api", "", "Sound strips (5.1+ and 4.2-5.0 API)"),
    ("test_bake", "test_mesh_cache", MESH_CACHE),
    ("test_bake", "test_pc2", MESH_CACHE),
    ("test_mode_switch_conflict", "", MESH_CACHE),
    ("test_bake", "", "Shape-key bake (ownership, undo, glTF)"),
    ("test_animator_keys", "", ANIMATOR_KEYS),
    ("test_reduction_in_worker", "", ANIMATOR_KEYS),
    ("test_face_layers_bake", "", "Face layers and head motion"),
    ("test_mouth_interior_bake", "", "Mouth interior (teeth, tongue)"),
    ("test_operators", "", OPERATORS),
    ("test_pipeline_parity", "", OPERATORS),
    ("test_bad_input_blender", "", BAD_INPUT),
    ("test_linked_preview_errors", "", BAD_INPUT),
    ("test_no_optional_deps", "", "Without optional packages (bundled wheels only)"),
    ("test_extension_install", "", "Extension zip install"),
    ("test_layout", "", "Package layout"),
]
CORE = "Core, outside Blender (tests/*.py)"


@dataclass
class Case:
    module: str       # the test file's stem, e.g. test_bake
    name: str
    outcome: str      # passed | skipped | failed | xfailed
    reason: str = ""  # skip / xfail reason
    in_blender: bool = True


@dataclass
class Run:
    blender: str
    python: str
    seconds: float
    date: str
    cases: list[Case] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        return sum(case.outcome == outcome for case in self.cases)


def feature_of(case: Case) -> str:
    if not case.in_blender:
        return CORE
    for module, prefix, feature in FEATURES:
        if case.module == module and case.name.startswith(prefix):
            return feature
    return case.module  # a new test file shows up under its own name rather than vanishing


def skip_reason(element: ET.Element) -> str:
    text = element.get("message", "")
    # A module-level skip reads "collection skipped"; its reason is in the text as (path, line, reason).
    if text == "collection skipped" and (element.text or "").startswith("("):
        try:
            text = str(ast.literal_eval(element.text)[2])
        except (ValueError, SyntaxError, IndexError):
            text = element.text
    return " ".join(text.removeprefix("Skipped: ").split())


def parse_case(element: ET.Element) -> Case:
    children = {child.tag: child for child in element}
    outcome, reason = "passed", ""
    if "failure" in children or "error" in children:  # error: setup/teardown or collection
        outcome = "failed"
    elif "skipped" in children:
        skipped = children["skipped"]
        outcome = "xfailed" if skipped.get("type") == "pytest.xfail" else "skipped"
        reason = skip_reason(skipped)
    # classname is tests.blender.test_bake[.TestClass]; a module-level result has none and
    # carries the module in its name instead.
    parts = (element.get("classname") or element.get("name", "")).split(".")
    index = next((i for i, part in enumerate(parts) if part.startswith("test_")), len(parts) - 1)
    return Case(parts[index], element.get("name", ""), outcome, reason, "blender" in parts[:index])


def version_from_name(path: Path) -> str:
    match = re.fullmatch(r"blender-(.+)", path.stem)
    return match.group(1) if match else "?"


def read_run(path: Path) -> Run:
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as err:
        raise SystemExit(f"{path} is not readable JUnit XML ({err}): rerun that environment's tests")
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    props = {p.get("name"): p.get("value") for s in suites for p in s.findall("properties/property")}
    run = Run(props.get("blender_version") or version_from_name(path), props.get("python_version") or "?",
              sum(float(s.get("time", 0)) for s in suites),
              min((s.get("timestamp")[:10] for s in suites if s.get("timestamp")), default=""))
    run.cases = [parse_case(case) for s in suites for case in s.iter("testcase")]
    return run


def version_key(run: Run) -> tuple:
    return tuple(int(n) for n in re.findall(r"\d+", run.blender)[:3])


def read_runs(folder: Path) -> list[Run]:
    """Every run in `folder`, newest Blender first."""
    return sorted((read_run(path) for path in sorted(folder.glob("*.xml"))), key=version_key, reverse=True)


def duration(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if minutes else f"{rest} s"


def cell(cases: list[Case]) -> str:
    """One feature area on one Blender: fail beats pass beats skipped."""
    if not cases:
        return "–"
    counts = Counter(case.outcome for case in cases)
    ran = counts["passed"] + counts["xfailed"]
    if counts["failed"]:
        return f"**FAIL** ({counts['failed']} of {len(cases)})"
    if not ran:
        return f"skipped ({counts['skipped']})"
    return f"pass ({ran}" + (f"; {counts['skipped']} skipped)" if counts["skipped"] else ")")


def scope(run: Run) -> str:
    return "all of tests/" if any(not case.in_blender for case in run.cases) else "tests/blender"


def totals_table(runs: list[Run]) -> list[str]:
    lines = ["| Blender | Python | ran | passed | skipped | failed | xfailed | time |",
             "|---|---|---|---|---|---|---|---|"]
    for run in runs:
        counts = " | ".join(str(run.count(o)) for o in ("passed", "skipped", "failed", "xfailed"))
        lines.append(f"| {run.blender} | {run.python} | {scope(run)} | {counts} | {duration(run.seconds)} |")
    return lines


def features_table(runs: list[Run]) -> list[str]:
    order = list(dict.fromkeys([f for _, _, f in FEATURES] + [CORE]))
    seen = {feature_of(case) for run in runs for case in run.cases}
    order = [f for f in order if f in seen] + sorted(seen - set(order))
    lines = ["| feature | " + " | ".join(run.blender for run in runs) + " |",
             "|---|" + "---|" * len(runs)]
    for feature in order:
        cells = [cell([c for c in run.cases if feature_of(c) == feature]) for run in runs]
        lines.append(f"| {feature} | " + " | ".join(cells) + " |")
    return lines


def reasons(run: Run) -> list[str]:
    """The run's skip and xfail reasons, each once with its count, then the failed tests."""
    counts = Counter((case.outcome, case.reason) for case in run.cases if case.outcome in ("skipped", "xfailed"))
    lines = [f"  - {n} × {'expected failure: ' if outcome == 'xfailed' else ''}{reason or '(no reason given)'}"
             for (outcome, reason), n in sorted(counts.items(), key=lambda item: (-item[1], item[0]))]
    lines += [f"  - failed: `{case.module}::{case.name}`" for case in run.cases if case.outcome == "failed"]
    return lines


def render(runs: list[Run]) -> str:
    dates = sorted({run.date for run in runs if run.date})
    when = f" ({', '.join(dates)})" if dates else ""
    lines = [f"Generated from the JUnit XML of `make test`{when} by `python -m flame_lipsync.tools.support_table`; "
             "do not edit by hand.", ""]
    lines += totals_table(runs) + [""] + features_table(runs) + ["", "Skipped, expected to fail, or failed:", ""]
    for run in runs:
        details = reasons(run)
        lines.append(f"- {run.blender}: " + ("nothing" if not details else ""))
        lines += details
    return "\n".join(line.rstrip() for line in lines) + "\n"


def replace_between_markers(readme: Path, table: str) -> bool:
    """Put `table` between the markers, atomically; False (README untouched) when they are
    missing or out of order. Bytes, so everything outside the markers stays as it was."""
    data = readme.read_bytes()
    start, end = data.find(START.encode()), data.find(END.encode())
    if start < 0 or end < start or data.count(START.encode()) != 1 or data.count(END.encode()) != 1:
        return False
    new = data[:start] + f"{START}\n{table}{END}".encode() + data[end + len(END):]
    if new != data:
        from flame_lipsync.core.atomic import replacing
        with replacing(readme) as tmp:
            tmp.write_bytes(new)
    return True


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", default=str(ROOT / "out" / "test-results"),
                        help="folder of the JUnit XML files (default: out/test-results)")
    parser.add_argument("--readme", help="write the table between the markers in this file "
                                         "(default: print it)")
    args = parser.parse_args(argv)
    runs = read_runs(Path(args.results))
    if not runs:
        print(f"no JUnit XML in {args.results}: run `make test` first", file=sys.stderr)
        return 1
    table = render(runs)
    if args.readme is None:
        print(table, end="")
        return 0
    if replace_between_markers(Path(args.readme), table):
        print(f"updated the support table in {args.readme} from {len(runs)} run(s)", file=sys.stderr)
        return 0
    print(table, end="")
    print(f"{args.readme} has no single '{START}' ... '{END}' pair: left it untouched; "
          "the table is printed above, put the markers where it belongs", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
