"""The repository stands on its own: no tracked file reaches outside the checkout for reference
material, the conformance suites ship inside the package with their licences and provenance,
and the design the code cites by section title exists with those sections."""
from __future__ import annotations

import json
import re
import subprocess
import tomllib

from tests.support import ROOT

VECTORS = ROOT / "engine" / "verification" / "vectors"
# Spelled in pieces so that this file does not match itself.
_SHARED, _DESIGN, _ISSUE = "../" + "shared", "DESIGN" + " section", "iss" + "ue"
OUTSIDE = re.compile("|".join([re.escape(_SHARED), r"\bshared/vectors\b", _DESIGN, r"DESIGN\.md", r"STYLE\.md",
                               rf"(?<![A-Za-z]){_ISSUE}[ _-]\d+", rf"\({_ISSUE}\b"]))


def _tracked() -> list[str]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    return [name for name in out.decode().split("\0") if name]


def test_no_tracked_file_refers_outside_the_checkout() -> None:
    files = _tracked()
    assert "engine/verification/vectors/expected_zip215.json" in files  # the listing is the real one
    offenders = []
    for name in files:
        path = ROOT / name
        if not path.is_file() or path.suffix in (".png", ".parquet"):
            continue
        text = path.read_text(errors="replace")
        offenders += [f"{name}:{i}: {line.strip()[:100]}" for i, line in enumerate(text.splitlines(), 1)
                      if OUTSIDE.search(line)]
    assert offenders == [], "\n".join(offenders)


def test_the_pattern_catches_what_it_is_for() -> None:
    for line in (f"see {_SHARED}/vectors", f"({_DESIGN} 4)", f"{_SHARED}/STYLE" + ".md", f"the job of {_ISSUE} 5",
                 f"the error contract ({_ISSUE} 6)", f"the {_ISSUE}-6 gates", f"def test_of_{_ISSUE}_13()"):
        assert OUTSIDE.search(line), line
    assert not OUTSIDE.search('see docs/design.md, "Validity rule"')


def test_conformance_suites_ship_with_licences_and_provenance() -> None:
    readme = (VECTORS / "README.md").read_text()
    for name, repo, commit in (("wycheproof_ed25519_test.json", "C2SP/wycheproof", "dac1dd4729fd"),
                               ("cctv_ed25519vectors.json", "C2SP/CCTV", "1e3d2860d46e"),
                               ("speccheck_cases.json", "novifinancial/ed25519-speccheck", "65519336fda7")):
        json.loads((VECTORS / name).read_text())
        row = next(line for line in readme.splitlines() if line.startswith(f"| `{name}`") and repo in line)
        assert commit in row and "LICENSE." in row, row
    for licence in ("LICENSE.wycheproof", "LICENSE.cctv", "LICENSE.speccheck"):
        assert (VECTORS / licence).stat().st_size > 1000, licence
    expected = json.loads((VECTORS / "expected_zip215.json").read_text())
    assert {"wycheproof_by_tcId", "cctv_by_number", "speccheck_by_index"} <= set(expected)


def test_vectors_are_package_data_of_the_wheel() -> None:
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = conf["tool"]["setuptools"]["package-data"]["engine.verification"]
    shipped = {p.name for pattern in patterns for p in (ROOT / "engine" / "verification").glob(pattern)}
    assert shipped == {p.name for p in VECTORS.iterdir() if p.is_file()}


def test_design_has_the_sections_the_code_cites() -> None:
    titles = {line[3:].strip() for line in (ROOT / "docs" / "design.md").read_text().splitlines()
              if line.startswith("## ")}
    cited = set()
    for name in _tracked():
        if name.endswith((".py", ".md", ".yaml", ".sh")) or name.endswith("Dockerfile"):
            text = (ROOT / name).read_text(errors="replace")
            for m in re.finditer(r'design\.md,? \(?((?:"[^"]+"(?:,? (?:and )?)?)+)', text):
                cited |= {" ".join(t.split()) for t in re.findall(r'"([^"]+)"', m.group(1))}
    assert cited, "no citations found: the pattern is wrong"
    assert cited <= titles, f"cited but missing from docs/design.md: {sorted(cited - titles)}"
