#!/bin/sh
# Installs the squawk-cli npm package (pinned) outside the repository, where
# `go run ./bench/lint` looks for its native binary.
set -eu
dest="${TMPDIR:-/tmp}/shiplock-squawk"
mkdir -p "$dest"
npm install --prefix "$dest" --no-audit --no-fund squawk-cli@2.66.0
ls "$dest/node_modules/@squawk-cli/"*/bin/squawk
