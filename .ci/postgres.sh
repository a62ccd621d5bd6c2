#!/usr/bin/env bash
# Start Debian's PostgreSQL on loopback with a database for the tests, and print its URL.
# Used by .ci/run; also handy on a developer machine (run as root).
# Only the URL goes to standard output: callers capture it.
set -euo pipefail
if ! command -v pg_ctlcluster >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq postgresql >/dev/null
fi
version=$(ls /usr/lib/postgresql | sort -n | tail -1)
if ! pg_lsclusters -h | grep -q "^$version main"; then
    pg_createcluster "$version" main >/dev/null 2>&1
fi
pg_ctlcluster "$version" main start >/dev/null 2>&1 || true  # "already running" is fine
for _ in $(seq 30); do pg_isready -q -h 127.0.0.1 && break; sleep 1; done
su postgres -c "psql -q -tc \"SELECT 1 FROM pg_roles WHERE rolname='scoring'\" | grep -q 1 || psql -q -c \"CREATE ROLE scoring LOGIN PASSWORD 'scoring' CREATEDB\""
su postgres -c "psql -q -tc \"SELECT 1 FROM pg_database WHERE datname='scoring_test'\" | grep -q 1 || psql -q -c \"CREATE DATABASE scoring_test OWNER scoring\""
echo "postgresql+psycopg://scoring:scoring@127.0.0.1:5432/scoring_test"
