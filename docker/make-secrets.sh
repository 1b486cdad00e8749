#!/usr/bin/env bash
# Creates the secret files docker-compose.yml reads (docker/secrets/*), each once, with random values.
set -euo pipefail
cd "$(dirname "$0")/secrets"
umask 077
rand() { head -c 24 /dev/urandom | base64 | tr -d '/+='; }
[ -s postgres_password ] || rand > postgres_password
[ -s tag_connector_db_password ] || rand > tag_connector_db_password
[ -s mongo_root_password ] || rand > mongo_root_password
[ -s mongo_url ] || printf 'mongodb://root:%s@mongo:27017/tag_connector?authSource=admin\n' "$(cat mongo_root_password)" > mongo_url
[ -s api_tokens ] || rand > api_tokens
[ -s oidc_client_secret ] || : > oidc_client_secret   # put the workspace API's client secret here
echo "secrets in $(pwd): $(ls | tr '\n' ' ')"
