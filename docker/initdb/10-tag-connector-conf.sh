#!/usr/bin/env bash
# Runs once, on an empty data directory (docker-entrypoint-initdb.d): copies postgres-conf/postgresql.conf
# (mounted at /etc/tag-connector/postgres-conf) into PGDATA and includes it. The settings take effect when
# the entrypoint restarts the server after the init scripts. As in test/support/pg.ts,
# output_plugin_libraries is kept only if this server knows it (15.19+): an unknown setting stops the server.
set -euo pipefail
src=/etc/tag-connector/postgres-conf/postgresql.conf
dst="$PGDATA/tag-connector.conf"
if postgres --describe-config | grep -q '^output_plugin_libraries'; then
  cp "$src" "$dst"
else
  grep -v '^output_plugin_libraries' "$src" > "$dst"
fi
echo "include 'tag-connector.conf'" >> "$PGDATA/postgresql.conf"
