"""Throwaway private database servers that fault tests may restart, kill,
stop (SIGSTOP) and resume, without touching the shared servers on 5432 and
3306 that other test workers use at the same time.

PrivatePostgres: a cluster made with initdb in a temporary directory, run
with pg_ctl (as the ``postgres`` OS user when we are root: PostgreSQL refuses
to run as root). PrivateMariaDB: a data directory made with
mariadb-install-db, served by mariadbd (as ``mysql``), root without a
password. Both listen on 127.0.0.1 on a free port, with their Unix sockets in
their own directory.

SilentServer: a TCP listener that accepts connections and never says a word.
"""

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_user(user, argv):
    if os.geteuid() == 0:
        return ["runuser", "-u", user, "--"] + argv
    return argv


def _own(path, user):
    if os.geteuid() == 0:
        shutil.chown(path, user, user)


def _children(pid):
    """Pids of pid's direct children (from /proc)."""
    kids = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(stat) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.split("/")[2]))
    return kids


def _signal_all(pids, sig):
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def _wait_until(check, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except Exception:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not come up within {timeout} s")
        time.sleep(0.05)


class PrivatePostgres:
    """One private PostgreSQL cluster. start() / restart() return once it
    accepts connections."""

    def __init__(self):
        bindirs = sorted(
            glob.glob("/usr/lib/postgresql/*/bin"),
            key=lambda d: int(d.split("/")[-2].split(".")[0]),
        )
        if not bindirs:
            raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql")
        self.bin = bindirs[-1]
        self.dir = tempfile.mkdtemp(prefix="fsr-pg-")
        os.chmod(self.dir, 0o755)
        _own(self.dir, "postgres")
        self.data = os.path.join(self.dir, "data")
        self.log = os.path.join(self.dir, "server.log")
        self.port = free_port()
        self._stopped = []
        self._run("initdb", "-D", self.data, "-U", "postgres", "-A", "trust", "-E", "UTF8",
                  "--no-sync")
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write(
                f"port = {self.port}\n"
                "listen_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.dir}'\n"
                "fsync = off\n"  # a fast restart checkpoints; nothing here crashes the OS
                "max_connections = 40\n"
                "shared_buffers = 16MB\n"
            )

    def _run(self, tool, *args, timeout=60):
        argv = _as_user("postgres", [os.path.join(self.bin, tool), *args])
        res = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=self.dir)
        if res.returncode != 0:
            raise RuntimeError(f"{tool} failed: {res.stdout}{res.stderr}")
        return res.stdout

    def start(self):
        self._run("pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", "30", "start")

    def restart(self):
        """pg_ctl restart -m fast: ends every session, starts again."""
        self._run("pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", "30", "-m", "fast",
                  "restart")

    def stop(self):
        self.resume()
        try:
            self._run("pg_ctl", "-D", self.data, "-w", "-t", "30", "-m", "immediate", "stop")
        except RuntimeError:
            pass

    def postmaster_pid(self):
        with open(os.path.join(self.data, "postmaster.pid")) as f:
            return int(f.readline())

    def pause(self):
        """SIGSTOP the postmaster and every backend: a server that stalls."""
        pm = self.postmaster_pid()
        self._stopped = [pm]
        os.kill(pm, signal.SIGSTOP)  # first, so that it forks no new backend
        kids = _children(pm)
        _signal_all(kids, signal.SIGSTOP)
        self._stopped += kids

    def resume(self):
        _signal_all(self._stopped, signal.SIGCONT)
        self._stopped = []

    def url(self, database="postgres"):
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self, name):
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class PrivateMariaDB:
    """One private MariaDB server; root@127.0.0.1 has no password."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="fsr-my-")
        os.chmod(self.dir, 0o755)
        _own(self.dir, "mysql")
        self.data = os.path.join(self.dir, "data")
        self.port = free_port()
        self.proc = None
        res = subprocess.run(
            [
                "mariadb-install-db",
                "--no-defaults",
                f"--datadir={self.data}",
                "--user=mysql",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if res.returncode != 0:
            raise RuntimeError(f"mariadb-install-db failed: {res.stdout}{res.stderr}")

    def _ping(self):
        import pymysql

        pymysql.connect(host="127.0.0.1", port=self.port, user="root", connect_timeout=1).close()
        return True

    def start(self):
        argv = [
            "mariadbd",
            "--no-defaults",
            f"--datadir={self.data}",
            f"--port={self.port}",
            "--bind-address=127.0.0.1",
            f"--socket={os.path.join(self.dir, 'mysqld.sock')}",
            f"--pid-file={os.path.join(self.dir, 'mysqld.pid')}",
            f"--log-error={os.path.join(self.dir, 'error.log')}",
            "--skip-name-resolve",
            "--skip-log-bin",
            "--innodb-buffer-pool-size=32M",
        ]
        if os.geteuid() == 0:
            argv.append("--user=mysql")
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        _wait_until(self._ping, 60, "the private MariaDB")

    def kill(self):
        """SIGKILL: no shutdown, InnoDB recovers on the next start."""
        self.resume()
        self.proc.kill()
        self.proc.wait(30)

    def pause(self):
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)

    def url(self, database=""):
        return f"mysql://root@127.0.0.1:{self.port}/{database}"

    def new_database(self, name):
        import pymysql

        conn = pymysql.connect(host="127.0.0.1", port=self.port, user="root", autocommit=True)
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}`")
        conn.close()
        return self.url(name)

    def close(self):
        if self.proc and self.proc.poll() is None:
            self.resume()
            self.proc.kill()
            self.proc.wait(30)
        shutil.rmtree(self.dir, ignore_errors=True)


class SilentServer:
    """Accepts TCP connections on 127.0.0.1 and never answers."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.accepted = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            self.accepted.append(conn)

    def close(self):
        self._stop.set()
        self._thread.join(5)
        for conn in self.accepted:
            conn.close()
        self.sock.close()
