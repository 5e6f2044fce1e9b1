"""What the tests share: slow obvious references (ref_ed25519, blockgraph_reference,
job_reference), the kernel harness, the Ed25519 test cases, the uncompiled-run sizes (nojit) and
a real ``bizra serve`` for tests (serve_helpers). ``ROOT`` is the repository checkout."""
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
