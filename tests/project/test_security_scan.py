"""The runbook's "unsafe code: 0" gate, for Python: bandit over engine/ and kernels/
finds nothing of medium or high severity, and every low finding is fixed or marked ``# nosec
<id>`` followed by a ``# reason``. The same measurement is the ``security-scan`` row of
``bizra gates``."""
from __future__ import annotations

import re
import tokenize

from engine.tooling.gate_checks import SCANNED, measure_security_scan
from engine.tooling.gates import Context
from tests.support import ROOT

_NOSEC = re.compile(r"#\s*nosec\b(?P<rest>.*)$")


def test_bandit_finds_nothing_unmarked() -> None:
    m = measure_security_scan(Context(quick=False, threads=1))
    assert m.skip is None and m.fail is None, (m.skip, m.fail)
    assert (m.details["high"], m.details["medium"], m.details["low"]) == (0, 0, 0), m.details["findings"]
    assert m.details["lines"] > 5000  # it scanned the tree, not an empty folder


def test_every_nosec_names_its_test_and_a_reason() -> None:
    marks = []
    for package in SCANNED:
        for path in sorted((ROOT / package).rglob("*.py")):
            with open(path, "rb") as f:
                comments = [(t.start[0], t.string) for t in tokenize.tokenize(f.readline) if t.type == tokenize.COMMENT]
            # a comment token runs to the end of the line: "# nosec B603  # reason" is one token
            marks += [(f"{path.relative_to(ROOT)}:{n}", m.group("rest")) for n, text in comments
                      if (m := _NOSEC.search(text))]
    assert marks, "no nosec marks at all: then this test should go"
    for where, rest in marks:
        assert re.match(r"^\s+B\d{3}(,\s*B\d{3})*\s+#\s*\S.{5,}", rest), f"{where}: '# nosec B<id>  # <reason>'"
