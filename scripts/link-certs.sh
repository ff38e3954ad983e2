#!/usr/bin/env bash
# Links ssl/ to the MongooseIM certificates, as the legacy deploy did:
#   ssl/ca.crt -> <dir>/ca.cer, ssl/server.crt -> <dir>/<name>.cer, ssl/server.key -> <dir>/<name>.key
# Usage: scripts/link-certs.sh /etc/mongooseim xmpp-prod.example.org
# The links follow the nightly renewal: http-utility re-reads the files when they change.
set -euo pipefail
dir=${1:?usage: scripts/link-certs.sh <certificate dir> <certificate name>}
name=${2:?usage: scripts/link-certs.sh <certificate dir> <certificate name>}
cd "$(dirname "$0")/.."
for f in "$dir/ca.cer" "$dir/$name.cer" "$dir/$name.key"; do
  [ -r "$f" ] || { echo "link-certs: $f is missing or unreadable; check the directory and the name" >&2; exit 1; }
done
mkdir -p ssl
ln -sfn "$dir/ca.cer" ssl/ca.crt
ln -sfn "$dir/$name.cer" ssl/server.crt
ln -sfn "$dir/$name.key" ssl/server.key
echo "ssl/ linked to $dir ($name)"
