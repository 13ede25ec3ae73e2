#!/usr/bin/env bash
# Starts the local PostgreSQL and MariaDB servers the tests use when they are
# down, and makes sure the accounts the tests connect with work:
#   PostgreSQL  postgres@127.0.0.1:5432 (trust), a database per test, with
#               a streaming hot standby of it on 127.0.0.1:5433 and
#               PgBouncer (transaction pooling) in front of it on 127.0.0.1:6435
#   MariaDB     root@127.0.0.1:3306 (empty password), a database per test
set -euo pipefail

wait_for() { # wait_for NAME COMMAND...: up to 60 s
  local name=$1; shift
  for _ in $(seq 60); do "$@" >/dev/null 2>&1 && return 0; sleep 1; done
  echo "databases.sh: $name did not come up" >&2
  return 1
}

pg_up() { pg_isready -h 127.0.0.1 -p 5432 -q; }
if ! pg_up; then
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  hba=/etc/postgresql/$version/main/pg_hba.conf
  # A fresh cluster asks for passwords over TCP; the tests use trust locally.
  if ! grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
    sed -i '1i host all all 127.0.0.1/32 trust' "$hba"
  fi
  echo "starting PostgreSQL $version"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start
  wait_for PostgreSQL pg_up
fi

# A hot standby of that server on port 5433 (streaming replication), for
# read_path tests: a cluster named "standby", cloned with pg_basebackup -R.
STANDBY_PORT=5433
standby_up() { pg_isready -h 127.0.0.1 -p $STANDBY_PORT -q; }
if ! standby_up; then
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  hba=/etc/postgresql/$version/main/pg_hba.conf
  if ! grep -q '^host replication all 127.0.0.1/32 trust' "$hba"; then
    sed -i '1i host replication all 127.0.0.1/32 trust' "$hba"
    pg_ctlcluster --skip-systemctl-redirect "$version" main reload
  fi
  data=/var/lib/postgresql/$version/standby
  if [ ! -f "$data/standby.signal" ]; then
    echo "creating a PostgreSQL $version hot standby on port $STANDBY_PORT"
    pg_dropcluster "$version" standby 2>/dev/null || true
    pg_createcluster "$version" standby --port $STANDBY_PORT >/dev/null
    find "$data" -mindepth 1 -delete
    # -R writes primary_conninfo and standby.signal; -X stream keeps the WAL
    # the copy needs. The standby sends feedback so that the primary's
    # cleanup does not cancel the queries it serves.
    su postgres -c "pg_basebackup -h 127.0.0.1 -p 5432 -U postgres -D $data -R -X stream -c fast"
    conf=/etc/postgresql/$version/standby
    sed -i '1i host all all 127.0.0.1/32 trust' "$conf/pg_hba.conf"
    echo "hot_standby_feedback = on" >>"$conf/postgresql.conf"
  fi
  echo "starting the PostgreSQL hot standby"
  pg_ctlcluster --skip-systemctl-redirect "$version" standby start
  wait_for "PostgreSQL standby" standby_up
fi

my_up() { mariadb-admin -h 127.0.0.1 -P 3306 -u root status >/dev/null 2>&1; }
if ! my_up; then
  echo "starting MariaDB"
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
  # The pid file tells it from the private servers below.
  start-stop-daemon --start --oknodo --background --pidfile /run/mysqld/mysqld.pid \
    --exec /usr/sbin/mariadbd
  wait_for MariaDB my_up
fi

# A private MariaDB pair for read_path tests: a primary with a binary log on
# port 3307 and a replica of it on 3308 (GTID replication). Private, so the
# server above keeps its configuration.
MY_DIR=/var/lib/feast-sqlreg-mariadb
private_up() { mariadb-admin -h 127.0.0.1 -P "$1" -u root status >/dev/null 2>&1; }
start_private() { # start_private NAME PORT SERVER_ID
  local dir=$MY_DIR/$1
  if [ ! -d "$dir/mysql" ]; then
    mkdir -p "$dir" && chown mysql:mysql "$MY_DIR" "$dir"
    mariadb-install-db --no-defaults --user=mysql --datadir="$dir" \
      --auth-root-authentication-method=normal >/dev/null
  fi
  # A server killed with the machine leaves its socket and pid file behind:
  # the socket would look like a live server, so clear both first (this
  # runs only when the server does not answer on its port).
  if ! mariadb-admin -S "$dir/mariadbd.sock" -u root ping >/dev/null 2>&1; then
    rm -f "$dir/mariadbd.sock" "$dir/mariadbd.sock.lock" "$dir/mariadbd.pid"
  fi
  start-stop-daemon --start --oknodo --background --pidfile "$dir/mariadbd.pid" \
    --exec /usr/sbin/mariadbd -- --no-defaults --user=mysql --datadir="$dir" \
    --port="$2" --bind-address=127.0.0.1 --socket="$dir/mariadbd.sock" \
    --pid-file="$dir/mariadbd.pid" --log-error="$dir/error.log" --skip-name-resolve \
    --server-id="$3" --log-bin=binlog --binlog-format=ROW \
    --character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci \
    --innodb-buffer-pool-size=64M
  if ! wait_for "MariaDB $1 (socket)" mariadb-admin -S "$dir/mariadbd.sock" -u root ping; then
    tail -n 20 "$dir/error.log" >&2 || true
    return 1
  fi
  mariadb -S "$dir/mariadbd.sock" -u root -e "
    CREATE USER IF NOT EXISTS 'root'@'127.0.0.1';
    GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;"
  wait_for "MariaDB $1" private_up "$2"
}
if ! private_up 3307 || ! private_up 3308; then
  echo "starting a private MariaDB primary (3307) and replica (3308)"
  start_private primary 3307 1
  start_private replica 3308 2
  mariadb -h 127.0.0.1 -P 3307 -u root -e "
    CREATE USER IF NOT EXISTS 'repl'@'127.0.0.1';
    GRANT REPLICATION SLAVE ON *.* TO 'repl'@'127.0.0.1';"
  if [ -z "$(mariadb -h 127.0.0.1 -P 3308 -u root -N -e 'SHOW SLAVE STATUS')" ]; then
    mariadb -h 127.0.0.1 -P 3308 -u root -e "
      CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=3307, MASTER_USER='repl',
        MASTER_USE_GTID=slave_pos;"
  fi
  mariadb -h 127.0.0.1 -P 3308 -u root -e "START SLAVE; SET GLOBAL read_only = 1;"
fi
# PgBouncer in transaction mode on port 6435, in front of the server on 5432
# (any database, trust): the pooler many PostgreSQL fleets put between their
# clients and the server, which hands each transaction to any server
# connection. Run as postgres (it refuses root), from its own directory.
PGB_DIR=/var/lib/feast-sqlreg-pgbouncer
PGB_PORT=6435
pgb_up() { pg_isready -h 127.0.0.1 -p $PGB_PORT -q; }
if ! pgb_up; then
  echo "starting PgBouncer (transaction pooling) on port $PGB_PORT"
  mkdir -p "$PGB_DIR"
  cat >"$PGB_DIR/pgbouncer.ini" <<EOF
[databases]
* = host=127.0.0.1 port=5432
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PGB_PORT
unix_socket_dir =
auth_type = trust
auth_file = $PGB_DIR/userlist.txt
pool_mode = transaction
default_pool_size = 4
max_client_conn = 500
logfile = $PGB_DIR/pgbouncer.log
pidfile = $PGB_DIR/pgbouncer.pid
admin_users = postgres
EOF
  printf '"postgres" ""\n' >"$PGB_DIR/userlist.txt"
  # A PgBouncer killed with the machine leaves its pid file behind.
  rm -f "$PGB_DIR/pgbouncer.pid"
  chown -R postgres:postgres "$PGB_DIR"
  su postgres -s /bin/sh -c "pgbouncer -d -q $PGB_DIR/pgbouncer.ini"
  wait_for PgBouncer pgb_up
fi

# A read-only account for the read_path tests (each test grants it SELECT on
# its own database). The password has characters that need URL-encoding.
RO_USER=feast_ro
RO_PASSWORD='ro p@ss:w%rd/x'
psql -h 127.0.0.1 -U postgres -d postgres -qtAc "SELECT 1 FROM pg_roles WHERE rolname = '$RO_USER'" | grep -q 1 ||
  psql -h 127.0.0.1 -U postgres -d postgres -qc "CREATE ROLE $RO_USER LOGIN PASSWORD '$RO_PASSWORD'"
mariadb -h 127.0.0.1 -P 3306 -u root -e "
  CREATE USER IF NOT EXISTS '$RO_USER'@'%' IDENTIFIED BY '$RO_PASSWORD';
  CREATE USER IF NOT EXISTS '$RO_USER'@'localhost' IDENTIFIED BY '$RO_PASSWORD';"
echo "PostgreSQL (with its hot standby on port $STANDBY_PORT and PgBouncer on $PGB_PORT)," \
  "MariaDB (with a private primary and replica on 3307/3308) are up; read-only user $RO_USER exists"
