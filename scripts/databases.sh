#!/usr/bin/env bash
# Starts the local PostgreSQL and MariaDB servers the tests use when they are
# down, and makes sure the accounts the tests connect with work:
#   PostgreSQL  postgres@127.0.0.1:5432 (trust), creates a database per test
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

my_up() { mariadb-admin -h 127.0.0.1 -P 3306 -u root status >/dev/null 2>&1; }
if ! my_up; then
  echo "starting MariaDB"
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
  wait_for MariaDB my_up
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
echo "PostgreSQL and MariaDB are up; read-only user $RO_USER exists"
