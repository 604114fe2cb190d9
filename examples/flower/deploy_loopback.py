"""A real Flower deployment of the mganai audit on loopback: 1 SuperLink + N SuperNodes as separate processes.

Starts `flower-superlink` and N `flower-supernode`s bound to 127.0.0.1 only (each
SuperNode holds partition K of the data, `--node-config partition-id=K`), submits
this directory's Flower app with `flwr run`, waits (bounded) until the run
finishes, checks that the ServerApp wrote metrics.json and the reconstructions,
and stops every process it started, including the detached ones Flower spawns
(SuperExec, ServerApp, ClientApps). Telemetry is off (FLWR_TELEMETRY_ENABLED=0),
runtime dependency installation is off, FLWR_HOME is a temporary directory.

    python examples/flower/deploy_loopback.py --nodes 3 --rounds 3 --out runs/loopback [--defense secagg]

`--defense` sets the run config's `defense.name`: under `secagg` the ServerApp runs
Flower's `SecAggPlusWorkflow` and every ClientApp `secaggplus_mod`.

Linux only (it finds processes and listening sockets through /proc). Exit code 0
when the audit completed and every check passed; the last line says what happened.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

APP_DIR = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent  # flwr's entry points live beside the interpreter
MARKER = "MGANAI_LOOPBACK_RUN"  # set in every process we start; children inherit it

# A fast attack schedule for a smoke deployment (the default audit is far longer).
SMOKE_CONFIG = """
[attack]
start_round = 1
gan_steps_per_round = 5
gan_final_steps = 20
inversion_steps = 5
reps_per_client = 8
[eval]
oracle_epochs = 2
samples_per_class = 4
"""


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, deadline: float, proc: subprocess.Popen) -> None:
    """Block until `proc` accepts connections on 127.0.0.1:port (fails fast if it exits)."""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with code {proc.returncode} before listening")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


def marked_pids(tag: str) -> list[int]:
    """Processes (of this user) whose environment carries our run's marker."""
    needle = f"{MARKER}={tag}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def listening_addresses(pids: list[int]) -> set[str]:
    """host:port of every TCP socket in LISTEN state owned by one of `pids`."""
    inodes: set[str] = set()
    for pid in pids:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue
    found = set()
    for table, v6 in (("/proc/net/tcp", False), ("/proc/net/tcp6", True)):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            if cols[3] != "0A" or cols[9] not in inodes:  # 0A = LISTEN
                continue
            hex_ip, hex_port = cols[1].split(":")
            raw = bytes.fromhex(hex_ip)
            if v6:
                ip = socket.inet_ntop(socket.AF_INET6, b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4)))
            else:
                ip = socket.inet_ntop(socket.AF_INET, raw[::-1])
            found.add(f"{ip}:{int(hex_port, 16)}")
    return found


def stop_all(procs: list[subprocess.Popen], tag: str, grace: float = 10.0) -> list[int]:
    """SIGTERM, then SIGKILL, every process we started and everything it spawned; returns survivors."""
    for pid in marked_pids(tag):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and marked_pids(tag):
        for p in procs:
            p.poll()
        time.sleep(0.2)
    for pid in marked_pids(tag):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    time.sleep(0.5)
    for p in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(timeout=5)
    return marked_pids(tag)


def flwr(args: list[str], env: dict[str, str], timeout: float) -> str:
    """Run the `flwr` CLI and return its stdout (raises on a non-zero exit)."""
    done = subprocess.run([str(BIN / "flwr"), *args], env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(
            f"flwr {' '.join(args)} failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}"
        )
    return done.stdout


def last_json(text: str) -> dict:
    """The JSON object printed last by a `flwr ... --format json` call (other output may precede it)."""
    start = text.rfind("\n{") + 1 if "\n{" in text else text.find("{")
    return json.loads(text[start:])


def deploy(
    nodes: int,
    rounds: int,
    out: Path,
    methods: str,
    timeout: float,
    logs: Path,
    defense: str = "none",
    app_dir: Path = APP_DIR,
    extra_env: dict[str, str] | None = None,
) -> dict:
    """Run the audit on a loopback deployment; returns a summary (raises on any failure).

    `defense` goes into the run config (`defense.name`): it picks both apps' Flower components (secagg: SecAgg+).
    `app_dir` is the Flower app `flwr run` submits; `extra_env` is added to every process's environment.
    """
    tag = uuid.uuid4().hex
    home = Path(tempfile.mkdtemp(prefix="mganai-flwr-home-"))
    smoke = home / "smoke.toml"
    smoke.write_text(SMOKE_CONFIG)
    link_port = free_port()
    (home / "config.toml").write_text(
        f'[superlink]\ndefault = "loopback"\n\n[superlink.loopback]\n'
        f'address = "127.0.0.1:{link_port}"\ninsecure = true\n'
    )
    env = dict(os.environ, FLWR_TELEMETRY_ENABLED="0", FLWR_HOME=str(home), **{MARKER: tag}, **(extra_env or {}))
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"  # SuperLink/SuperNode spawn flower-superexec etc. by name
    env.setdefault("OMP_NUM_THREADS", "1")
    logs.mkdir(parents=True, exist_ok=True)
    procs: list[subprocess.Popen] = []
    deadline = time.monotonic() + timeout
    summary: dict = {"nodes": nodes, "rounds": rounds, "defense": defense, "out": str(out), "logs": str(logs)}

    def start(name: str, cmd: list[str]) -> None:
        log = open(logs / f"{name}.log", "wb")  # noqa: SIM115 - the child process writes it until stop_all
        procs.append(
            subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=home, start_new_session=True)
        )

    try:
        start(
            "superlink",
            [
                str(BIN / "flower-superlink"),
                "--insecure",
                "--host",
                "127.0.0.1",
                "--port",
                str(link_port),
                "--disable-runtime-dependency-installation",
            ],
        )
        wait_port(link_port, deadline, procs[0])
        for k in range(nodes):
            start(
                f"supernode-{k}",
                [
                    str(BIN / "flower-supernode"),
                    "--insecure",
                    "--superlink",
                    f"127.0.0.1:{link_port}",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(free_port()),
                    "--node-config",
                    f"partition-id={k} num-partitions={nodes}",
                ],
            )
        run_config = (
            f"config-file='{smoke}' out='{out}' data.clients={nodes} fl.rounds={rounds} "
            f"fl.local_epochs=1 attack.methods='{methods}' defense.name='{defense}' quiet=true"
        )
        started = last_json(
            flwr(["run", str(app_dir), "loopback", "--run-config", run_config, "--format", "json"], env, 120)
        )
        if not started.get("success") or not started.get("run-id"):
            raise RuntimeError(f"flwr run did not start a run: {started}")
        run_id = started["run-id"]
        summary["run_id"] = run_id
        status = ""
        while time.monotonic() < deadline:
            runs = last_json(flwr(["ls", "loopback", "--run-id", str(run_id), "--format", "json"], env, 60))["runs"]
            status = runs[0]["status"] if runs else ""
            if status.startswith("finished"):
                break
            if "listen" not in summary:  # while the run is live: which addresses do our processes listen on?
                summary["listen"] = sorted(listening_addresses(marked_pids(tag)))
            time.sleep(2)
        summary["status"] = status
        if status != "finished:completed":
            raise RuntimeError(f"run {run_id} ended as {status or 'not finished in time'} (logs in {logs})")
        exposed = [a for a in summary.get("listen", []) if not a.startswith(("127.0.0.1:", "::1:"))]
        if exposed:
            raise RuntimeError(f"processes listened beyond loopback: {exposed}")
        metrics = json.loads((out / "metrics.json").read_text())
        summary["metrics"] = {
            "fl_test_accuracy": metrics["fl"]["test_accuracy"],
            "runtime": metrics["fl"]["runtime"],
            "methods": metrics.get("methods", {}),
        }
        for name in metrics.get("methods", {}):
            if not (out / f"{name}.png").is_file():
                raise RuntimeError(f"no reconstructions image {out / name}.png")
        return summary
    finally:
        survivors = stop_all(procs, tag)
        summary["leftover_processes"] = survivors
        shutil.rmtree(home, ignore_errors=True)  # Flower's state for this run (config, FABs); logs stay in `logs`
        if survivors:
            raise RuntimeError(f"processes survived shutdown: {survivors}")


def check_settings(nodes: int, methods: str, defense: str) -> str:
    """What mganai would refuse in these settings (one line), before any process starts; "" when they are fine."""
    from mganai.config import build_config
    from mganai.errors import ConfigError

    try:
        cfg = build_config({}, {"data.clients": nodes, "attack.methods": methods, "defense.name": defense})
        if defense == "secagg":
            from mganai.flower.secagg import check_secagg

            check_secagg(cfg, nodes)
    except ConfigError as exc:
        return str(exc)
    return ""


def main() -> int:
    p = argparse.ArgumentParser(description="Run the mganai Flower app on a loopback SuperLink + N SuperNodes.")
    p.add_argument("--nodes", type=int, default=3, help="SuperNodes = FL clients (default 3)")
    p.add_argument("--rounds", type=int, default=3, help="FL rounds (default 3)")
    p.add_argument("--methods", help="attack methods (default passive + active; passive only under --defense secagg)")
    p.add_argument("--defense", default="none", help="defense.name of the run (default none; e.g. secagg)")
    p.add_argument(
        "--out", type=Path, default=Path("runs/flower-loopback"), help="where the ServerApp writes metrics.json"
    )
    p.add_argument("--timeout", type=float, default=600.0, help="give up after this many seconds (default 600)")
    p.add_argument("--logs", type=Path, help="directory for the processes' logs (default OUT/logs)")
    a = p.parse_args()
    if a.nodes < 2 or a.rounds < 1:
        print("deploy_loopback: error: --nodes must be >= 2 and --rounds >= 1", file=sys.stderr)
        return 2
    methods = a.methods or ("mganai-passive" if a.defense == "secagg" else "mganai-passive,mganai-active")
    problem = check_settings(a.nodes, methods, a.defense)
    if problem:
        print(f"deploy_loopback: error: {problem}", file=sys.stderr)
        return 2
    out = a.out.resolve()
    try:
        logs = (a.logs or out / "logs").resolve()
        summary = deploy(a.nodes, a.rounds, out, methods, a.timeout, logs, defense=a.defense)
    except (RuntimeError, TimeoutError, OSError, subprocess.TimeoutExpired, KeyError, ValueError) as exc:
        print(f"deploy_loopback: error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(summary, indent=2))
    print(
        f"deploy_loopback: ok: {a.nodes} SuperNodes, {a.rounds} rounds, run {summary['run_id']} completed, "
        f"outputs in {out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
