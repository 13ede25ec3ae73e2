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

    def __init__(self, standby_of=None):
        """A new cluster (initdb), or with standby_of, a streaming hot
        standby of that running cluster (pg_basebackup -R)."""
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
        if standby_of is None:
            self._run("initdb", "-D", self.data, "-U", "postgres", "-A", "trust", "-E", "UTF8",
                      "--no-sync")
        else:
            self._run("pg_basebackup", "-D", self.data, "-h", "127.0.0.1", "-p",
                      str(standby_of.port), "-U", "postgres", "-X", "stream", "-R",
                      "--no-sync", timeout=120)
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

    def promote(self):
        """A standby becomes a primary (pg_ctl promote, waiting for it)."""
        self._run("pg_ctl", "-D", self.data, "-w", "-t", "30", "promote")

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

    def __init__(self, extra_args=()):
        self.extra_args = list(extra_args)  # more mariadbd options (Galera's)
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
        ] + self.extra_args
        if os.geteuid() == 0:
            argv.append("--user=mysql")
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        _wait_until(self._ping, 120, "the private MariaDB")

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


class GaleraCluster:
    """A MariaDB Galera cluster (galera-4) of private servers on 127.0.0.1:
    node 0 starts a new cluster, the others join it by a state transfer
    (rsync). Failure detection is tightened (a node that stops answering is
    suspected after 2 s and evicted after 3 s), so a killed node's peers go
    on within seconds, not Galera's default 15 s. root has no password."""

    PROVIDER = "/usr/lib/galera/libgalera_smm.so"

    def __init__(self, size=3):
        self.galera_ports = [free_port() for _ in range(size)]
        peers = ",".join(f"127.0.0.1:{p}" for p in self.galera_ports)
        self.nodes = []
        for i, gport in enumerate(self.galera_ports):
            options = ";".join([
                f"gmcast.listen_addr=tcp://127.0.0.1:{gport}",
                f"ist.recv_addr=127.0.0.1:{free_port()}",
                "gcache.size=64M",
                "evs.keepalive_period=PT0.5S",
                "evs.suspect_timeout=PT2S",
                "evs.inactive_timeout=PT3S",
                "evs.inactive_check_period=PT0.5S",
            ])
            self.nodes.append(PrivateMariaDB([
                "--wsrep-on=ON",
                f"--wsrep-provider={self.PROVIDER}",
                "--wsrep-cluster-name=fsr",
                f"--wsrep-cluster-address=gcomm://{peers}",
                f"--wsrep-node-name=node{i}",
                f"--wsrep-node-address=127.0.0.1:{gport}",
                f"--wsrep-provider-options={options}",
                "--wsrep-sst-method=rsync",
                f"--wsrep-sst-receive-address=127.0.0.1:{free_port()}",
                "--binlog-format=ROW",
                "--innodb-autoinc-lock-mode=2",
                "--innodb-flush-log-at-trx-commit=2",
            ]))

    def start(self):
        first, *rest = self.nodes
        first.extra_args.append("--wsrep-new-cluster")
        first.start()
        first.extra_args.remove("--wsrep-new-cluster")
        for node in rest:
            node.start()
            _wait_until(lambda: self.status(node, "wsrep_local_state_comment") == "Synced",
                        120, "a Galera node's state transfer")
        _wait_until(lambda: self.status(first, "wsrep_cluster_size") == str(len(self.nodes)),
                    60, "the Galera cluster")

    def rejoin(self, node):
        """Starts a node that was killed; it rejoins the cluster (a state
        transfer from a peer) and is back once Synced."""
        node.start()
        _wait_until(lambda: self.status(node, "wsrep_local_state_comment") == "Synced",
                    120, "a Galera node rejoining")

    @staticmethod
    def status(node, variable):
        import pymysql

        conn = pymysql.connect(host="127.0.0.1", port=node.port, user="root", connect_timeout=2)
        try:
            with conn.cursor() as cur:
                cur.execute("SHOW GLOBAL STATUS LIKE %s", (variable,))
                row = cur.fetchone()
                return row[1] if row else None
        finally:
            conn.close()

    def new_database(self, name):
        """Made on node 0, replicated to the others (DDL is replicated
        in total order)."""
        url = self.nodes[0].new_database(name)
        import pymysql

        for node in self.nodes[1:]:
            def present(node=node):
                conn = pymysql.connect(host="127.0.0.1", port=node.port, user="root")
                try:
                    with conn.cursor() as cur:
                        return cur.execute("SHOW DATABASES LIKE %s", (name,)) == 1
                finally:
                    conn.close()
            _wait_until(present, 30, "a database on every Galera node")
        return url

    def close(self):
        for node in reversed(self.nodes):
            node.close()


def check_writer_logs(logs, stored, since, event, interval):
    """The HA tests' verdict on writers' logs of (interval number,
    acknowledged, monotonic time, error text) around an event (a node
    killed, a standby promoted) at monotonic time `since`: every
    acknowledged interval is in `stored`, every failure says its outcome
    is unknown, and each writer succeeded again within 5 s of the event
    and never went 5 s without a success after it."""
    for w, log in enumerate(logs):
        acked = [interval(i) for i, ok, _, _ in log if ok]
        assert acked, f"writer {w} acknowledged nothing: {log[:3]}"
        assert set(acked) <= stored, f"writer {w}: acknowledged intervals lost"
        failures = [text for _, ok, _, text in log if not ok]
        others = [(round(t - since, 2), text) for _, ok, t, text in log
                  if not ok and "outcome is unknown" not in text]
        successes = [round(t - since, 2) for _, ok, t, _ in log if ok]
        assert not others, (f"writer {w}: {len(others)} errors other than outcome-unknown, "
                            f"at {others[0][0]}..{others[-1][0]} s after {event} (successes "
                            f"from {successes[0]} to {successes[-1]} s): {sorted(set(t for _, t in others))}")
        after = [t for _, ok, t, _ in log if ok and t > since]
        assert after, f"writer {w} wrote nothing after {event}"
        print(f"writer {w}: {len(acked)} acknowledged, {len(failures)} outcome unknown, "
              f"first success {after[0] - since:.2f} s after {event}")
        gap = max(b - a for a, b in zip([since] + after, after))
        assert gap < 5, f"writer {w}: no success for {gap:.1f} s after {event}"


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
