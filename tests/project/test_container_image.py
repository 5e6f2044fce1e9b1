"""The container image, built and run for real: scripts/build_image.sh makes a Debian base
(mmdebstrap), the host wheelhouse and the image with rootful podman in a private storage folder;
then the image serves a generated dataset mounted read-only, locked down as on Kubernetes.

Checked, in one test (one image build; a module of several tests would build it once per xdist
worker):
- the container runs as uid 10001 (seen from the host's /proc), its root filesystem and the data
  mount are read-only, only /tmp (a tmpfs) and the Numba cache volume are writable;
- /readyz answers, ``scripts/smoke.sh`` passes (with a token: signing and verifying too) and the
  image's HEALTHCHECK command passes;
- the baked Numba cache is used: the cache volume (a copy of the image's cache) holds exactly the
  image's files, same sizes and times, after start and after the smoke traffic, so nothing was
  compiled; and start-to-ready is well under that of the same image started with an empty cache
  directory (measured in the same run, which must write a cache there, i.e. really compile);
- a real Prometheus (Debian package) scrapes the container's metrics port: ``up`` is 1 and
  bizra_ series are stored.

Networking: the container uses the host's network namespace with the service bound to
127.0.0.1 on free ports (``--host 127.0.0.1``, RPC_PORT, PROMETHEUS_PORT). Podman's bridge
network also works on these machines but adds a bridge interface, iptables NAT chains and CNI
state on the host, which a test should not leave behind; nothing here listens beyond loopback.

The node key: ``bizra serve`` creates DATA/node_key.secret on first start, which a read-only data
directory cannot take, so the test provisions it as an operator would, with the public CLI
(``bizra keygen --validators 1`` writes the same 0600 key file format), owned by uid 10001.

Requirements: root (rootful podman), podman, runc, mmdebstrap, curl and prometheus; under
CI=true anything missing, or a podman that cannot start, is a failure (.ci/run installs them),
elsewhere a skip that says what is missing. Everything it starts (containers, Prometheus, the
podman storage with its mounts, temp folders) is removed at the end, also on failure.
Self-contained on purpose: only the installed ``bizra`` CLI, subprocess and urllib.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")
UID = 10001  # deploy/Dockerfile's runtime user
CACHE_DIR = "/opt/bizra/numba-cache"  # deploy/Dockerfile's NUMBA_CACHE_DIR
DATA_DIR = "/var/lib/bizra"
TOKEN = "container-test-token"
BUILD_TIMEOUT_S = 1200
READY_TIMEOUT_S = 600  # the cold start compiles every kernel: minutes on a busy 2-core machine


def unavailable(message: str) -> None:
    if CI:
        pytest.fail(f"{message} (CI=true: .ci/run installs what this test needs)")
    pytest.skip(message)


def bizra_cli() -> str:
    """The `bizra` console script of the environment running the tests."""
    beside = Path(sys.executable).with_name("bizra")
    path = str(beside) if beside.exists() else shutil.which("bizra")
    if path is None:
        pytest.fail("the bizra console script is not installed (pip install -e '.[dev]')")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(cmd: list[str], *, timeout: float = 120, check: bool = True, env: dict[str, str] | None = None,
        ) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if check and r.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} exited {r.returncode}\n--- stdout ---\n{r.stdout[-4000:]}"
                    f"\n--- stderr ---\n{r.stderr[-4000:]}")
    return r


def http_get(url: str, timeout: float = 3) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")
    except (urllib.error.URLError, OSError) as exc:
        return 0, str(exc)


class Podman:
    """Rootful podman with its own storage, run root and containers.conf under ``base``."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.conf = base / "containers.conf"
        self.cmd = ["podman", "--root", str(base / "root"), "--runroot", str(base / "run"),
                    "--tmpdir", str(base / "libpod-tmp")]
        self.env = {**os.environ, "CONTAINERS_CONF": str(self.conf), "TMPDIR": str(base / "tmp")}
        (base / "tmp").mkdir()
        # runc: crun refuses the hybrid cgroup layout of these machines. Ulimits: podman's
        # defaults (nofile 1048576, nproc 4194304) exceed what a machine may grant, and podman
        # lowers its own nproc to kernel.pid_max, which runc cannot raise a container above.
        nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        nproc = resource.getrlimit(resource.RLIMIT_NPROC)[1]
        pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
        nofile = 1048576 if nofile == resource.RLIM_INFINITY else min(nofile, 1048576)
        nproc = pid_max if nproc == resource.RLIM_INFINITY else min(nproc, pid_max)
        systemd = Path("/proc/1/comm").read_text().strip() == "systemd"
        self.conf.write_text(
            "[containers]\n"
            f'default_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]\n'
            "[engine]\n"
            + ('runtime = "runc"\n' if shutil.which("runc") else "")
            + ("" if systemd else 'cgroup_manager = "cgroupfs"\n')
            + 'events_logger = "file"\n')

    def __call__(self, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run([*self.cmd, *args], timeout=timeout, check=check, env=self.env)

    def remove_everything(self) -> None:
        """Containers, images, volumes and the storage's mounts; then the folder."""
        for args in (["rm", "--all", "--force", "--time", "0"], ["system", "reset", "--force"]):
            with contextlib.suppress(subprocess.SubprocessError, OSError):
                subprocess.run([*self.cmd, *args], capture_output=True, timeout=300, env=self.env)
        prefix = str(self.base) + "/"
        mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
        for mount in sorted((m for m in mounts if m.startswith(prefix)), key=len, reverse=True):
            subprocess.run(["umount", "-l", mount], capture_output=True)
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture
def podman() -> Iterator[Podman]:
    if os.geteuid() != 0:
        unavailable("needs root: the test runs rootful podman (uid 10001 in the container is uid 10001 on "
                    "the host, which owns the node key)")
    missing = [t for t in ("podman", "runc", "mmdebstrap", "curl", "prometheus") if shutil.which(t) is None]
    if missing:
        unavailable(f"not installed: {', '.join(missing)} (apt-get install podman runc mmdebstrap curl prometheus)")
    engine = Podman(Path(tempfile.mkdtemp(prefix="bizra-ctr-")))
    try:
        info = engine("info", "--format", "{{.Store.GraphDriverName}} {{.Host.OCIRuntime.Name}}", check=False)
        if info.returncode != 0:
            unavailable(f"podman cannot start: {info.stderr.strip()[-2000:]}")
        yield engine
    finally:
        engine.remove_everything()


def cache_listing(root: Path) -> dict[str, tuple[int, int]]:
    """relative path -> (size, whole-second mtime) of every file under a Numba cache dir."""
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            p = Path(dirpath, name)
            st = p.stat()
            out[str(p.relative_to(root))] = (st.st_size, int(st.st_mtime))
    return out


def image_cache_listing(podman: Podman, image: str) -> dict[str, tuple[int, int]]:
    r = podman("run", "--rm", "--network", "none", "--entrypoint", "find", image, CACHE_DIR, "-type", "f",
               "-printf", r"%P\t%s\t%T@\n")
    out = {}
    for line in r.stdout.splitlines():
        rel, size, mtime = line.split("\t")
        out[rel] = (int(size), int(float(mtime)))
    return out


class Node:
    """One `bizra serve` container on loopback ports of the host network."""

    def __init__(self, podman: Podman, image: str, name: str, data: Path, extra: list[str]) -> None:
        self.podman, self.name = podman, name
        self.rpc, self.metrics = free_port(), free_port()
        self.api = f"http://127.0.0.1:{self.rpc}"
        self.metrics_url = f"http://127.0.0.1:{self.metrics}/metrics"
        self.started = time.monotonic()
        podman("run", "--detach", "--name", name, "--network", "host",
               "--read-only", "--read-only-tmpfs=false", "--tmpfs", "/tmp:rw,nosuid,nodev,size=256m,mode=1777",
               "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
               "--volume", f"{data}:{DATA_DIR}:ro",
               "--env", f"RPC_PORT={self.rpc}", "--env", f"PROMETHEUS_PORT={self.metrics}",
               "--env", f"BIZRA_API_TOKEN={TOKEN}", "--env", "BIZRA_THREADS=2",
               *extra, image, "--host", "127.0.0.1", timeout=120)

    def logs(self) -> str:
        r = self.podman("logs", self.name, check=False)
        return (r.stdout + r.stderr)[-6000:]

    def wait_ready(self) -> float:
        """Seconds from `podman run` to the first 200 on /readyz."""
        last_state_check = 0.0
        while time.monotonic() - self.started < READY_TIMEOUT_S:
            code, body = http_get(f"{self.api}/readyz")
            if code == 200:
                return time.monotonic() - self.started
            if code == 503 and '"error":null' not in body.replace(" ", ""):
                pytest.fail(f"{self.name}: loading failed: {body}\n{self.logs()}")
            if time.monotonic() - last_state_check > 2:
                last_state_check = time.monotonic()
                state = self.podman("inspect", "--format", "{{.State.Status}}", self.name).stdout.strip()
                if state != "running":
                    pytest.fail(f"{self.name} is {state} before ready\n{self.logs()}")
            time.sleep(0.1)
        pytest.fail(f"{self.name}: not ready after {READY_TIMEOUT_S} s\n{self.logs()}")

    def inspect(self, fmt: str) -> str:
        return self.podman("inspect", "--format", fmt, self.name).stdout.strip()

    def exec(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.podman("exec", self.name, *cmd, check=check)


def start_prometheus(work: Path, target: str, stack: contextlib.ExitStack) -> str:
    port = free_port()
    work.mkdir()
    config = {"global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
              "scrape_configs": [{"job_name": "bizra-container", "static_configs": [{"targets": [target]}]}]}
    (work / "prometheus.yml").write_text(json.dumps(config))  # JSON is YAML
    log = (work / "prometheus.log").open("w")
    stack.callback(log.close)
    proc = subprocess.Popen([shutil.which("prometheus"), f"--config.file={work / 'prometheus.yml'}",
                             f"--storage.tsdb.path={work / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def stop() -> None:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    stack.callback(stop)
    return f"http://127.0.0.1:{port}"


def prom_query(prom: str, query: str) -> list[dict]:
    code, body = http_get(f"{prom}/api/v1/query?" + urllib.parse.urlencode({"query": query}))
    return json.loads(body)["data"]["result"] if code == 200 else []


@pytest.mark.slow  # about 7 minutes on 2 busy cores: the build compiles every kernel, so does the cold start
def test_image_builds_and_serves_read_only_as_uid_10001_with_its_numba_cache(podman: Podman, tmp_path: Path) -> None:
    figures: dict[str, float | int | str] = {}
    image = "localhost/bizra:container-test"

    # ---- build: base from Debian packages, host wheelhouse, no network inside the build ----
    t = time.monotonic()
    build = run(["bash", str(ROOT / "scripts" / "build_image.sh"), image], timeout=BUILD_TIMEOUT_S,
                env={**podman.env, "CONTAINER_ENGINE": " ".join(podman.cmd), "WORK": str(podman.base / "work"),
                     "PYTHON": sys.executable})
    figures["build_s"] = round(time.monotonic() - t, 1)
    figures["build_steps"] = " | ".join(re.findall(r"^(?:base|wheelhouse|image): .*$", build.stdout, re.M))
    figures["image_mb"] = int(podman("image", "inspect", "--format", "{{.Size}}", image).stdout) // 10**6
    config = json.loads(podman("image", "inspect", "--format", "{{json .Config}}", image).stdout)
    assert config["User"] == "bizra" and config["Env"] and f"NUMBA_CACHE_DIR={CACHE_DIR}" in config["Env"]
    baked = image_cache_listing(podman, image)
    assert any(p.endswith(".nbi") for p in baked) and any(p.endswith(".nbc") for p in baked), baked

    # ---- data (read-only in the container) and the node key, with the public CLI ----------
    data, keys = tmp_path / "data", tmp_path / "keys"
    run([bizra_cli(), "generate", "--out", str(data), "--validators", "8", "--blocks", "16",
         "--attestations", "64", "--seed", "1", "--quiet"])
    run([bizra_cli(), "keygen", "--out", str(keys), "--validators", "1"])
    key = data / "node_key.secret"
    shutil.copyfile(keys / "validator_keys.secret", key)
    os.chown(key, UID, UID)
    os.chmod(key, 0o600)
    data.chmod(0o755)  # readable by the container's user whatever the umask; the key is its own
    for p in data.glob("*.parquet"):
        p.chmod(0o644)
    before = {p.name: p.stat().st_mtime_ns for p in data.iterdir()}

    with contextlib.ExitStack() as stack:
        # ---- warm start: the cache volume starts as a copy of the image's cache ---------------
        warm = Node(podman, image, "bizra-warm", data, ["--volume", f"bizra-numba:{CACHE_DIR}"])
        stack.callback(podman, "rm", "--force", "--time", "5", warm.name, check=False)
        figures["warm_ready_s"] = round(warm.wait_ready(), 2)
        volume = Path(podman("volume", "inspect", "--format", "{{.Mountpoint}}", "bizra-numba").stdout.strip())
        assert cache_listing(volume) == baked, "the service compiled at start: its Numba cache was not used"

        # uid 10001, as the host sees the container's main process
        status = Path(f"/proc/{warm.inspect('{{.State.Pid}}')}/status").read_text()
        assert re.search(rf"^Uid:\s+{UID}\s+{UID}\s+{UID}\s+{UID}$", status, re.M), status
        assert re.search(rf"^Gid:\s+{UID}\s+{UID}\s+{UID}\s+{UID}$", status, re.M), status
        assert warm.exec("id", "-u").stdout.strip() == str(UID)
        # read-only root and data, writable /tmp (tmpfs) and cache volume only
        assert warm.inspect("{{.HostConfig.ReadonlyRootfs}}") == "true"
        for path in ("/probe", "/opt/bizra/venv/probe", f"{DATA_DIR}/probe"):
            r = warm.exec("sh", "-c", f"echo x > {path}", check=False)
            assert r.returncode != 0 and "Read-only file system" in r.stderr, (path, r.stderr)
        warm.exec("sh", "-c", f"echo x > /tmp/probe && echo x > {CACHE_DIR}/probe && rm {CACHE_DIR}/probe")
        assert "tmpfs" in warm.exec("sh", "-c", "grep ' /tmp ' /proc/mounts").stdout

        # the runbook's smoke checks (token set: signing and verifying too), the HEALTHCHECK
        smoke = run(["bash", str(ROOT / "scripts" / "smoke.sh"), warm.api, warm.metrics_url], timeout=120,
                    env={**os.environ, "BIZRA_API_TOKEN": TOKEN}, check=False)
        assert smoke.returncode == 0, f"{smoke.stdout}\n{smoke.stderr}\n{warm.logs()}"
        assert "verify honest -> valid" in smoke.stdout
        podman("healthcheck", "run", warm.name)
        assert cache_listing(volume) == baked, "requests compiled kernels: the image's warm-up misses a path"

        # ---- a real Prometheus scrapes the container's metrics port ---------------------------
        prom = start_prometheus(tmp_path / "prometheus", f"127.0.0.1:{warm.metrics}", stack)
        deadline = time.monotonic() + 90
        up = series = []
        while time.monotonic() < deadline:
            up = prom_query(prom, 'up{job="bizra-container"}')
            series = prom_query(prom, 'count by (__name__) ({job="bizra-container", __name__=~"bizra_.+"})')
            if up and up[0]["value"][1] == "1" and any(s["metric"]["__name__"] == "bizra_poi_verify_total"
                                                       for s in series):
                break
            time.sleep(0.5)
        assert up and up[0]["value"][1] == "1", f"up = {up}\n{(tmp_path / 'prometheus' / 'prometheus.log').read_text()[-3000:]}"
        assert any(s["metric"]["__name__"] == "bizra_poi_verify_total" for s in series), series
        figures["bizra_series_scraped"] = len(series)
        stack.close()  # Prometheus and the warm node stop before the cold start is timed

        # ---- cold start: the same image with an empty cache directory must compile ------------
        cold = Node(podman, image, "bizra-cold", data, ["--env", "NUMBA_CACHE_DIR=/tmp/numba-cold"])
        stack.callback(podman, "rm", "--force", "--time", "5", cold.name, check=False)
        figures["cold_ready_s"] = round(cold.wait_ready(), 2)
        written = cold.exec("find", "/tmp/numba-cold", "-name", "*.nbc").stdout.split()
        assert written, "the cold start wrote no cache: it did not compile, so it is no reference"
        # Relative, not absolute: a warm start skips the compilation that dominates a cold one.
        assert figures["warm_ready_s"] * 3 < figures["cold_ready_s"], figures

    assert {p.name: p.stat().st_mtime_ns for p in data.iterdir()} == before, "the data directory changed"
    print("container image figures:", json.dumps(figures))
