"""Re-measure one question and splice it into the last full run's report and results, instead of
running every question again (``bench/run.py --only overhead``).

The question's rows replace its rows in ``bench/results.json`` (the other questions' rows, and
the run's date and machine, stay as the full run left them; ``refreshed`` records which question
was measured again, and when). In ``docs/benchmarks.md`` the summary table is rewritten from the
merged rows and the question's own section is replaced, with a line saying when it was measured;
the rest of the report is left as it was. Only questions whose section can be rebuilt from their
own data are taken (``SECTIONS``).
"""

from __future__ import annotations

import datetime
import json
import os
import re
from pathlib import Path

import overhead
from report import summary
from rows import Row

SECTIONS = {"overhead": "## Generation with and without previews"}
"""Question -> the heading of its section in docs/benchmarks.md."""


def callback_ms(report: str) -> str:
    """The step callback's cost the last full run wrote in the overhead section."""
    found = re.search(r"The step callback adds about (\S+) ms", report)
    return found.group(1) if found else "n/a"


def splice(report: str, heading: str, section: str, rows: list[dict]) -> str:
    """``report`` with its summary table made from ``rows`` and the section under ``heading``
    replaced by ``section`` (up to the next ``## `` heading)."""
    table = re.search(r"\| Figure \| Unit \|.*?\n\n", report, re.S)
    if table is None:
        raise SystemExit("docs/benchmarks.md has no summary table: run the whole `make bench`")
    own = [row for row in rows if row["question"] != "gpu"]  # the GPU section lists those
    report = report[: table.start()] + "\n".join(summary(own)) + "\n\n" + report[table.end() :]
    start = report.find(heading)
    if start < 0:
        raise SystemExit(f"docs/benchmarks.md has no '{heading}' section: run `make bench`")
    end = report.find("\n## ", start + len(heading))
    end = len(report) if end < 0 else end + 1
    return report[:start] + section.rstrip("\n") + "\n\n" + report[end:]


def refresh(question: str, root: Path, tiny: bool = False) -> str:
    """Measure ``question`` again and splice it into ``root``'s report and results; returns
    the new report."""
    if question not in SECTIONS:
        raise SystemExit(f"--only takes one of {', '.join(SECTIONS)}, not {question!r}")
    results_file, report_file = root / "bench" / "results.json", root / "docs" / "benchmarks.md"
    results = json.loads(results_file.read_text())
    report = report_file.read_text()
    load_before = os.getloadavg()[0]
    rows, data = overhead.measure(None, tiny)
    load = max(load_before, os.getloadavg()[0])
    when = datetime.datetime.now().astimezone().isoformat(timespec="minutes")
    results["rows"] = merge(results["rows"], question, [row.as_dict() for row in rows])
    results.setdefault("refreshed", {})[question] = {"date": when, "load_average": load}
    section = overhead.section(data["generation"], callback_ms(report), tiny)
    section = section.replace(
        "\n\n",
        f"\n\nMeasured again on {when[:16].replace('T', ' ')} by `bench/run.py --only "
        f"{question}`, load average {load:.2f} (1 min, {os.cpu_count()} cores; the rest of "
        f"this report is from the run of {results['date'][:10]}).\n\n",
        1,
    )
    report = splice(report, SECTIONS[question], section, results["rows"])
    results_file.write_text(json.dumps(results, indent=2) + "\n")
    report_file.write_text(report)
    return report


def merge(rows: list[dict], question: str, new: list[dict]) -> list[dict]:
    """``rows`` with ``question``'s rows replaced by ``new``, where the old ones were."""
    at = next((i for i, row in enumerate(rows) if row["question"] == question), len(rows))
    kept = [row for row in rows if row["question"] != question]
    at = min(at, len(kept))
    return kept[:at] + new + kept[at:]


__all__ = ["Row", "merge", "refresh", "splice"]
