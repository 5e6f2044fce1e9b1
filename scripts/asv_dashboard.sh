#!/usr/bin/env bash
# Benchmark the last N commits with asv, publish the dashboard, screenshot it.
#
#   scripts/asv_dashboard.sh [N]          # default N=5, quick runs of the dashboard subset
#   scripts/asv_dashboard.sh 0            # only publish and screenshot the results already there
#   ASV_FULL=1 scripts/asv_dashboard.sh 10   # full statistics (slow: tens of minutes per commit)
#   ASV_BENCH='bench_job' scripts/asv_dashboard.sh 3   # another --bench regex
#
# Each commit's own code is measured: its tree is exported with `git archive` (read-only on
# the repository) into .asv/dashboard/trees/<hash>, and `asv run --python=same
# --set-commit-hash <hash>` runs the *current* benchmark suite with ASV_PYTHONPATH pointing at
# that tree, so `import engine` / `import kernels` load that commit's modules (checked below)
# while the interpreter and dependencies are this checkout's .venv. Commits whose code the
# current suite cannot drive (an API it uses did not exist yet) get failed entries, which
# asv shows as gaps. Results go to .asv/results, the site to .asv/html (both git-ignored).
# The screenshot (docs/asv-dashboard.png) is the FixedBatch ratio graph rendered by headless
# Chromium from a loopback-only HTTP server.
set -euo pipefail

N=${1:-5}
ROOT=$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)
PY=${PYTHON:-$ROOT/.venv/bin/python}
CONF=$ROOT/asv.conf.json
MACHINE=${ASV_MACHINE:-$(hostname)}
TREES=$ROOT/.asv/dashboard/trees
SHOT=${ASV_SCREENSHOT:-$ROOT/docs/asv-dashboard.png}
PAGE=${ASV_PAGE:-bench_verify.FixedBatch.track_ratio_vs_libsodium}
DEFAULT_BENCH='^bench_verify\.FixedBatch\.track_ratio_vs_libsodium|^bench_verify\.Column\.track_|^bench_sign\.SignMany\.track_|^bench_blockgraph\.TimeBlockGraph\.|^bench_job\.RunJob\.track_rows_per_s|^bench_import\.'
BENCH=${ASV_BENCH:-$DEFAULT_BENCH}
QUICK=--quick
[[ ${ASV_FULL:-0} == 1 ]] && QUICK=

[[ $N =~ ^[0-9]+$ ]] || { echo "asv_dashboard: N must be a number of commits, got '$N'" >&2; exit 2; }
command -v chromium >/dev/null || { echo "asv_dashboard: chromium not found (apt-get install chromium)" >&2; exit 2; }
cd "$ROOT"
asv() { "$PY" -m asv "$@"; }

# A machine entry is needed for results; --yes takes asv's detected defaults.
asv machine --yes --machine "$MACHINE" --config "$CONF" >/dev/null

failed=()
commits=()
((N > 0)) && commits=($(git rev-list --reverse --max-count="$N" HEAD))
for commit in "${commits[@]}"; do
    tree=$TREES/$commit
    if [[ ! -f $tree/.exported ]]; then
        rm -rf "$tree" && mkdir -p "$tree"
        git archive "$commit" engine kernels pyproject.toml | tar -x -C "$tree"
        touch "$tree/.exported"
    fi
    echo "== $(git log -1 --format='%h %s' "$commit" | cut -c1-100)"
    # Load (or compile, ~30-60 s for a commit whose kernels changed) the Numba kernels once,
    # outside the timed benchmarks; the cache lives in the tree's kernels/__pycache__.
    ASV_PYTHONPATH=$tree PYTHONPATH=$tree "$PY" -P - "$tree" <<'PYEOF'
import sys, time
import engine, kernels
for m in (engine, kernels):
    assert m.__file__.startswith(sys.argv[1]), f"{m.__name__} loaded from {m.__file__}, not the exported tree"
t = time.perf_counter()
from engine.verification.api import warm_up
warm_up()
try:
    from engine.pipeline.job import _compile_kernels
    _compile_kernels(None)
except ImportError:
    pass
print(f"   kernels ready in {time.perf_counter() - t:.1f} s ({engine.__file__})")
PYEOF
    if ! ASV_PYTHONPATH=$tree asv run --python=same --set-commit-hash "$commit" --machine "$MACHINE" \
            $QUICK --bench "$BENCH" --config "$CONF"; then
        failed+=("$commit")
    fi
done

asv publish --config "$CONF"

# The published index.html loads jQuery, Flot and Bootstrap from CDNs. Where those cannot be
# reached (an offline machine), render a copy whose script tags point at local files: Debian's
# jquery and bootstrap, Flot 0.8.3 as shipped by pympler (an asv dependency), and minimal
# stand-ins for the plugins that have no local copy (date tick labels; no zoom, no table sort).
SITE=$ROOT/.asv/html
if ! "$PY" -c "import urllib.request; urllib.request.urlopen('https://code.jquery.com/jquery-3.3.1.min.js', timeout=5)" 2>/dev/null; then
    SITE=$ROOT/.asv/html-offline
    "$PY" - "$ROOT/.asv/html" "$SITE" <<'PYEOF'
import re, shutil, sys
from pathlib import Path
import pympler

src, dst = Path(sys.argv[1]), Path(sys.argv[2])
shutil.rmtree(dst, ignore_errors=True)
shutil.copytree(src, dst)
vendor = dst / "vendor"
vendor.mkdir()
local = {
    "jquery-3.3.1.min.js": Path("/usr/share/javascript/jquery/jquery.min.js"),
    "jquery.flot.min.js": Path(pympler.__file__).parent / "templates" / "jquery.flot.min.js",
    "bootstrap.min.js": Path("/usr/share/javascript/bootstrap/js/bootstrap.min.js"),
    "bootstrap.min.css": Path("/usr/share/javascript/bootstrap/css/bootstrap.min.css"),
}
stand_ins = {
    "jquery.flot.time.min.js": """(function ($) { $.plot.plugins.push({ name: "time-lite", version: "0", options: {},
  init: function (plot) { plot.hooks.processOptions.push(function (plot) {
    $.each(plot.getAxes(), function (_, axis) { if (axis.options.mode === "time") {
      axis.tickFormatter = function (v) { return new Date(v).toISOString().slice(0, 16).replace("T", " "); }; } }); }); } });
})(jQuery);""",
    "jquery.flot.selection.min.js": "",
    "jquery.flot.categories.min.js": "",
    "jquery.flot.orderBars.js": "",
    "stupidtable.min.js": "(function ($) { $.fn.stupidtable = function () { return this; }; })(jQuery);",
    "md5.min.js": "",
}
for name, path in local.items():
    if not path.is_file():
        sys.exit(f"asv_dashboard: offline and {path} is missing (Debian: libjs-jquery, libjs-bootstrap)")
    shutil.copy(path, vendor / name)
for name, text in stand_ins.items():
    (vendor / name).write_text(text + "\n")
html = (dst / "index.html").read_text()
def local_url(m):
    name = m.group(2).rsplit("/", 1)[-1]
    if name not in local and name not in stand_ins:
        sys.exit(f"asv_dashboard: no local copy for {m.group(2)}")
    return f'{m.group(1)}="vendor/{name}"'
html = re.sub(r'(src|href)="(https://(?:code\.jquery\.com|cdnjs\.cloudflare\.com|cdn\.jsdelivr\.net)/[^"]+)"', local_url, html)
html = re.sub(r'\s(integrity|crossorigin|referrerpolicy)="[^"]*"', "", html)
(dst / "index.html").write_text(html)
PYEOF
fi

port=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$PY" -m http.server --bind 127.0.0.1 --directory "$SITE" "$port" >/dev/null 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true' EXIT
for _ in $(seq 50); do
    "$PY" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/')" 2>/dev/null && break
    sleep 0.2
done
# The dashboard draws its graphs in JavaScript after loading the JSON; the virtual time
# budget lets those requests and the rendering finish before the capture.
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1400,900 \
    --virtual-time-budget=20000 --screenshot="$SHOT" "http://127.0.0.1:$port/#$PAGE" 2>/dev/null
echo "screenshot: $SHOT"
echo "browse: $PY -m asv preview --config $CONF   (serves .asv/html on 127.0.0.1)"
if ((${#failed[@]})); then
    echo "asv_dashboard: benchmarks failed for: ${failed[*]}" >&2
    exit 1
fi
