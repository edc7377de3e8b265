#!/bin/sh
# secrets.sh writes the two secrets the Compose files read, once: the OAuth
# client secret (shared by the demo IdP and authgate) and authgate's cookie
# key (32 random bytes, base64). Existing files are kept.
set -eu
cd "$(dirname "$0")"
mkdir -p secrets
umask 022 # the files must be readable by the image's user (65532)
if [ ! -s secrets/client_secret ]; then
	head -c 24 /dev/urandom | base64 >secrets/client_secret
fi
if [ ! -s secrets/cookie_secret ]; then
	head -c 32 /dev/urandom | base64 >secrets/cookie_secret
fi
echo "secrets in $(pwd)/secrets"
