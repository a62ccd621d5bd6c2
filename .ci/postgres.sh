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
# two roles, as in production: "scoring" owns the tables and runs the migrations
# (SCORING_MIGRATION_DATABASE_URL); "scoring_service" is what the service connects as
# (SCORING_DATABASE_URL): it owns nothing, and db-upgrade grants it only what it needs (it may add
# to the history, never rewrite it).  CREATEROLE: the least-privilege test makes roles of its own.
su postgres -c "psql -q -tc \"SELECT 1 FROM pg_roles WHERE rolname='scoring'\" | grep -q 1 || psql -q -c \"CREATE ROLE scoring LOGIN PASSWORD 'scoring' CREATEDB CREATEROLE\""
su postgres -c "psql -q -c \"ALTER ROLE scoring CREATEROLE\""
su postgres -c "psql -q -tc \"SELECT 1 FROM pg_roles WHERE rolname='scoring_service'\" | grep -q 1 || psql -q -c \"CREATE ROLE scoring_service LOGIN PASSWORD 'scoring_service' NOCREATEDB NOCREATEROLE\""
su postgres -c "psql -q -tc \"SELECT 1 FROM pg_database WHERE datname='scoring_test'\" | grep -q 1 || psql -q -c \"CREATE DATABASE scoring_test OWNER scoring\""
echo "postgresql+psycopg://scoring:scoring@127.0.0.1:5432/scoring_test"
