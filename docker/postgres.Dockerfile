# PostgreSQL 15 with wal2json, for docker-compose.yml (context: docker/).
# The official image ships the PGDG apt repository, so the packaged wal2json matches the server build.
FROM postgres:15
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-15-wal2json \
 && rm -rf /var/lib/apt/lists/*
# First start only (empty data directory): include postgres-conf/postgresql.conf, then create the role.
COPY initdb/ /docker-entrypoint-initdb.d/
