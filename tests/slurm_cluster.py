"""A single-node SLURM cluster on 127.0.0.1 for the tests, from Debian's packages (munge, slurmctld, slurmd).

    python -m tests.slurm_cluster start DIR     write DIR/slurm.conf, start munged, slurmctld and slurmd
    python -m tests.slurm_cluster stop DIR      cancel its jobs, stop exactly the PIDs recorded in DIR/pids.json

Everything lives in DIR: the configuration, a fresh munge key and socket, state, spool, logs. The
daemons are bound to 127.0.0.1 (`CommunicationParameters=NoCtldInAddrAny,NoInAddrAny`) on ports
chosen free at start. SLURM's commands find the cluster without any environment variable, as on a
real cluster, through the one file outside DIR: the link `/run/slurm/conf` -> DIR, where clients
look when /etc/slurm/slurm.conf is absent (SLURM_CONF would not do: Snakemake's job step drops
SLURM_* variables before its `srun`). Start refuses a machine with its own SLURM configuration and
stop removes only its own link. There is no accounting (no slurmdbd): like many small clusters,
job states come from `squeue`. slurmctld writes every finished job to DIR/jobcomp.log
(`jobcomp/filetxt`: partition, account, time limit, CPUs, memory), which the tests read. Two
partitions, `main` (the default) and `bemseg`, both with a 60-minute limit.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

BINARIES = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "scontrol", "scancel")
SYSTEM_CONF = Path("/etc/slurm/slurm.conf")
LINK = Path("/run/slurm/conf")
PARTITIONS = {"main": "Default=YES MaxTime=60", "bemseg": "Default=NO MaxTime=60"}


def unavailable() -> str | None:
    """Why a test cluster cannot be started on this machine (None: it can)."""
    missing = [name for name in BINARIES if _which(name) is None]
    if missing:
        return f"SLURM/munge programs not installed ({', '.join(missing)}): apt-get install slurm-wlm munge"
    if os.geteuid() != 0:
        return f"the test cluster needs root (slurmd launches jobs; it links {LINK})"
    if SYSTEM_CONF.exists() or LINK.exists() or LINK.is_symlink():
        return f"this machine has a SLURM configuration of its own ({SYSTEM_CONF} or {LINK}), which would shadow it"
    return None


def _which(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _memory_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024 * 9 // 10
    raise RuntimeError("/proc/meminfo has no MemTotal")


def slurm_conf(folder: Path, ctld_port: int, slurmd_port: int) -> str:
    """slurm.conf of a one-node cluster named `localhost` at 127.0.0.1, sized like this machine."""
    user = pwd.getpwuid(os.getuid()).pw_name
    partitions = "\n".join(f"PartitionName={name} Nodes=localhost {spec} State=UP" for name, spec in PARTITIONS.items())
    return f"""\
ClusterName=bemsegtest
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
SlurmUser={user}
SlurmdUser={user}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={folder}/munge/munge.socket
StateSaveLocation={folder}/state
SlurmdSpoolDir={folder}/spool
SlurmctldPidFile={folder}/slurmctld.pid
SlurmdPidFile={folder}/slurmd.pid
SlurmctldLogFile={folder}/slurmctld.log
SlurmdLogFile={folder}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc={folder}/jobcomp.log
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SlurmdParameters=config_overrides
ReturnToService=2
MinJobAge=600
MpiDefault=none
NodeName=localhost NodeAddr=127.0.0.1 CPUs={os.cpu_count()} RealMemory={_memory_mb()} State=UNKNOWN
{partitions}
"""


@dataclass
class Cluster:
    """A running test cluster: its folder and the PIDs of the daemons it started."""

    folder: Path
    pids: dict[str, int]

    def run(self, *command: str) -> str:
        """Run a SLURM client command against this cluster; its standard output."""
        return subprocess.run(command, check=True, capture_output=True, text=True, timeout=60).stdout

    def completed_jobs(self) -> list[dict[str, str]]:
        """One dict per finished job, from slurmctld's job completion log."""
        path = self.folder / "jobcomp.log"
        lines = path.read_text().splitlines() if path.is_file() else []
        return [dict(field.split("=", 1) for field in line.split() if "=" in field) for line in lines]


def _wait(check, what: str, folder: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    logs = "".join(f"\n--- {p.name}\n{p.read_text()[-2000:]}" for p in sorted(folder.glob("*.log")))
    raise RuntimeError(f"test SLURM cluster in {folder}: {what} did not come up within {seconds:.0f} s{logs}")


def _ok(command: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=30)


def start(folder: str | Path) -> Cluster:
    """Write the configuration into `folder` and start munged, slurmctld and slurmd; wait until the node is idle."""
    folder = Path(folder).resolve()
    if reason := unavailable():
        raise RuntimeError(f"cannot start a test SLURM cluster: {reason}")
    for sub in ("munge", "state", "spool"):
        (folder / sub).mkdir(parents=True, exist_ok=True, mode=0o700)
    key = folder / "munge" / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o600)
    (folder / "slurm.conf").write_text(slurm_conf(folder, _free_port(), _free_port()))
    if not LINK.parent.is_dir():
        LINK.parent.mkdir(parents=True)
        (folder / "made_link_parent").touch()
    LINK.symlink_to(folder)
    cluster = Cluster(folder, {})
    daemons = {
        "munged": [_which("munged"), "--foreground", "--force", f"--socket={folder}/munge/munge.socket",
                   f"--key-file={key}", f"--pid-file={folder}/munge/munged.pid",
                   f"--seed-file={folder}/munge/munged.seed", f"--log-file={folder}/munged.log"],
        "slurmctld": [_which("slurmctld"), "-D", "-i", "-f", str(folder / "slurm.conf")],
        "slurmd": [_which("slurmd"), "-D", "-N", "localhost", "-f", str(folder / "slurm.conf")],
    }
    ready = {
        "munged": lambda: (folder / "munge" / "munge.socket").exists(),
        "slurmctld": lambda: "UP" in _ok(["scontrol", "ping"]).stdout,
        "slurmd": lambda: _ok(["sinfo", "-h", "-n", "localhost", "-o", "%T"]).stdout.strip().startswith("idle"),
    }
    try:
        for name, command in daemons.items():
            with open(folder / f"{name}.out", "w") as out:
                cluster.pids[name] = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                                      start_new_session=True).pid
            (folder / "pids.json").write_text(json.dumps(cluster.pids))
            _wait(ready[name], name, folder)
    except BaseException:
        stop(folder)
        raise
    return cluster


def _alive(pid: int, name: str) -> bool:
    """Whether `pid` is still the daemon `name` this module started (not a reused PID)."""
    try:
        return name in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False


def stop(folder: str | Path) -> None:
    """Cancel the cluster's jobs, stop the daemons in `folder`/pids.json (and nothing else), remove the link."""
    folder = Path(folder).resolve()
    record = folder / "pids.json"
    pids = json.loads(record.read_text()) if record.is_file() else {}
    if "slurmd" in pids and _alive(pids["slurmd"], "slurmd"):
        _ok(["scancel", "--user", pwd.getpwuid(os.getuid()).pw_name])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and _ok(["squeue", "-h", "-t", "R,CG,PD"]).stdout.strip():
            time.sleep(0.5)
    for name in ("slurmd", "slurmctld", "munged"):
        pid = pids.get(name)
        if pid is None or not _alive(pid, name):
            continue
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while _alive(pid, name) and time.monotonic() < deadline:
            _reap(pid)
            time.sleep(0.2)
        if _alive(pid, name):
            os.kill(pid, signal.SIGKILL)
        _reap(pid)
    record.unlink(missing_ok=True)
    if LINK.is_symlink() and Path(os.readlink(LINK)) == folder:
        LINK.unlink()
        if (folder / "made_link_parent").exists():
            LINK.parent.rmdir()


def _reap(pid: int) -> None:
    """Collect an exited child of this process (a no-op for daemons started by another process)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["start", "stop"])
    parser.add_argument("folder", type=Path)
    args = parser.parse_args(argv)
    if args.action == "start":
        cluster = start(args.folder)
        print(f"test SLURM cluster in {cluster.folder} ({LINK} -> it), daemons: {cluster.pids}")
    else:
        stop(args.folder)


if __name__ == "__main__":
    sys.exit(main())
