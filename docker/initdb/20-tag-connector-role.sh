#!/usr/bin/env bash
# Runs once, on an empty data directory: postgres-conf/init.sql in $POSTGRES_DB, with the role's password read
# from the compose secret (never written into a file of the image or the repository).
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v tag_connector_password="$(cat /run/secrets/tag_connector_db_password)" \
  -v tracked_schemas="${INIT_TRACKED_SCHEMAS:-public}" \
  -f /etc/tag-connector/postgres-conf/init.sql
