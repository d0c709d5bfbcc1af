#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for tests and benchmarks: Debian's PostgreSQL, a temp folder, a free loopback
# port, a random password, run as a non-root user (initdb and pg_ctl refuse root).
#
#   scripts/postgres-cluster.sh install          install Debian's postgresql package if no server is found
#   scripts/postgres-cluster.sh start [DIR]      create and start a cluster in DIR (default: a new temp folder);
#                                                prints shell assignments: PG_URL=… PG_DIR=… PG_PID=… PG_PORT=…
#   scripts/postgres-cluster.sh stop DIR         stop it (fast shutdown) and delete DIR
#   scripts/postgres-cluster.sh pause DIR        stop its server (fast shutdown), keeping DIR: an outage for tests
#   scripts/postgres-cluster.sh resume DIR       start that server again on the same port; prints PG_PID=…
#
# The server listens on 127.0.0.1 only (no Unix socket outside DIR), with scram-sha-256 for TCP; the role and the
# database are both `agentpdp`. Nothing is written outside DIR. As root, the server runs as the `postgres` user the
# Debian package creates (PG_USER overrides it); as anyone else, as that user.
set -euo pipefail

die() { echo "postgres-cluster: $*" >&2; exit 1; }

bin_dir() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ]; then echo "$d"; return 0; fi
  done
  return 1
}

install_server() {
  if bin_dir >/dev/null; then return 0; fi
  local sudo=()
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || die "PostgreSQL is not installed and this user cannot install it: apt-get install postgresql"
    sudo=(sudo -n)
  fi
  echo "postgres-cluster: installing Debian's postgresql (apt-get)" >&2
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  # The package would create and start a system cluster; policy-rc.d keeps it stopped, and we never use it.
  "${sudo[@]}" sh -c 'printf "#!/bin/sh\nexit 101\n" > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d'
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >&2 || {
    "${sudo[@]}" rm -f /usr/sbin/policy-rc.d
    die "apt-get install postgresql failed"
  }
  "${sudo[@]}" rm -f /usr/sbin/policy-rc.d
  bin_dir >/dev/null || die "postgresql installed, but no server binaries under /usr/lib/postgresql/*/bin"
}

# Runs a command as the cluster's user: as root, `postgres` (or PG_USER); otherwise the current user.
as_owner() {
  if [ "$(id -u)" = 0 ]; then
    local user="${PG_USER:-postgres}"
    id "$user" >/dev/null 2>&1 || die "no user $user to run PostgreSQL as (set PG_USER)"
    runuser -u "$user" -- "$@"
  else
    "$@"
  fi
}

# The server's options: loopback only, its socket in DIR. `resume` starts it again with the same ones.
server_options() {
  local dir="$1" port="$2"
  echo "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=on -c max_connections=200"
}

# Refuses a folder this script did not make (a cluster of ours has its data folder and its port file).
check_cluster() {
  local verb="$1" dir="$2"
  [ -n "$dir" ] && [ -d "$dir" ] || die "$verb: name the cluster's folder"
  [ -f "$dir/data/PG_VERSION" ] || die "$verb: $dir is not a cluster this script made"
}

free_port() {
  node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"
}

start() {
  install_server
  local bin dir port password
  bin="$(bin_dir)"
  # As root the server runs as another user, who may not enter a private TMPDIR (a test run's): /tmp then.
  local base="${TMPDIR:-/tmp}"
  [ "$(id -u)" = 0 ] && base=/tmp
  dir="${1:-$(mktemp -d "$base/agent-pdp-pg-XXXXXX")}"
  mkdir -p "$dir"
  chmod 700 "$dir"
  [ "$(id -u)" = 0 ] && chown "${PG_USER:-postgres}" "$dir"
  password="$(node -e "console.log(require('crypto').randomBytes(18).toString('base64url'))")"
  as_owner sh -c "umask 077 && printf '%s\n' '$password' > '$dir/pwfile'"
  as_owner "$bin/initdb" -D "$dir/data" -U agentpdp --pwfile="$dir/pwfile" --auth-local=scram-sha-256 \
    --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
  rm -f "$dir/pwfile"
  # A port can be taken between choosing and binding: try a few.
  local attempt
  for attempt in 1 2 3 4 5; do
    port="$(free_port)"
    if as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 -o "$(server_options "$dir" "$port")" start >/dev/null 2>&1; then
      as_owner sh -c "printf '%s\n' '$port' > '$dir/port'"
      break
    fi
    port=""
  done
  [ -n "$port" ] || { tail -20 "$dir/server.log" >&2 || true; die "the server did not start"; }
  PGPASSWORD="$password" "$bin/psql" -h 127.0.0.1 -p "$port" -U agentpdp -d postgres -v ON_ERROR_STOP=1 -q \
    -c 'CREATE DATABASE agentpdp' >/dev/null
  local pid
  pid="$(head -1 "$dir/data/postmaster.pid")"
  printf 'PG_URL=%q\nPG_DIR=%q\nPG_PID=%q\nPG_PORT=%q\n' \
    "postgres://agentpdp:$password@127.0.0.1:$port/agentpdp" "$dir" "$pid" "$port"
}

stop() {
  local dir="${1:-}"
  check_cluster stop "$dir"
  local bin
  bin="$(bin_dir)" || die "no PostgreSQL binaries"
  if [ -f "$dir/data/postmaster.pid" ]; then
    as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null 2>&1 || {
      # Last resort: the postmaster by its pid file, never by name.
      kill -9 "$(head -1 "$dir/data/postmaster.pid")" 2>/dev/null || true
    }
  fi
  rm -rf "$dir"
}

pause() {
  local dir="${1:-}"
  check_cluster pause "$dir"
  [ -f "$dir/data/postmaster.pid" ] || die "pause: the server of $dir is not running"
  local bin
  bin="$(bin_dir)" || die "no PostgreSQL binaries"
  # Fast shutdown: open transactions are rolled back and every client is disconnected, as in an outage.
  as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null 2>&1 || die "pause: the server did not stop"
}

resume() {
  local dir="${1:-}"
  check_cluster resume "$dir"
  [ -f "$dir/port" ] || die "resume: $dir has no port file (made by an older version of this script)"
  [ -f "$dir/data/postmaster.pid" ] && die "resume: the server of $dir is running"
  local bin port
  bin="$(bin_dir)" || die "no PostgreSQL binaries"
  port="$(head -1 "$dir/port")"
  [[ "$port" =~ ^[0-9]+$ ]] || die "resume: $dir/port holds no port"
  as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 -o "$(server_options "$dir" "$port")" start >/dev/null 2>&1 \
    || { tail -20 "$dir/server.log" >&2 || true; die "resume: the server did not start on port $port"; }
  printf 'PG_PID=%q\n' "$(head -1 "$dir/data/postmaster.pid")"
}

case "${1:-}" in
  install) install_server ;;
  start) shift; start "$@" ;;
  stop) shift; stop "$@" ;;
  pause) shift; pause "$@" ;;
  resume) shift; resume "$@" ;;
  *) die "usage: $0 install | start [DIR] | stop DIR | pause DIR | resume DIR" ;;
esac
