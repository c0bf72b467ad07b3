#!/bin/bash
# The work an import cannot skip, done by native tools, for the bench's reference row:
# every layer blob of the OCI layout LAYOUT sha256-hashed, inflated by ISA-L's igzip, the tar
# sha256-hashed and unpacked by GNU tar into DEST (one file per member, as the repository's
# objects), all layers at once; then the fs-verity sha512 digest of every file over 64 bytes, two
# processes at a time (the machine's two cores); then DEST's filesystem synced.
# No splitstreams, no EROFS image, no deduplication: a floor for what bootcfs does, not a copy.
#
# usage: native-import.sh LAYOUT DEST
set -euo pipefail
layout=$1 dest=$2
blob() { echo "$layout/blobs/sha256/${1#sha256:}"; }
manifest=$(blob "$(jq -r '.manifests[0].digest' "$layout/index.json")")

layer() {
  local i=$1 file=$2
  mkdir -p "$dest/$i"
  mkfifo "$dest/$i.c" "$dest/$i.t"
  openssl dgst -sha256 <"$dest/$i.c" >/dev/null &
  local c=$!
  openssl dgst -sha256 <"$dest/$i.t" >/dev/null &
  local t=$!
  tee "$dest/$i.c" <"$file" | igzip -dc | tee "$dest/$i.t" | tar -x -C "$dest/$i"
  wait "$c"
  wait "$t"
  rm "$dest/$i.c" "$dest/$i.t"
}

layers=$(jq -r '.layers[].digest' "$manifest")
pids=() i=0
for digest in $layers; do
  layer "$i" "$(blob "$digest")" &
  pids+=($!) i=$((i + 1))
done
for p in "${pids[@]}"; do wait "$p"; done
find "$dest" -type f -size +64c -print0 | xargs -0 -P2 -n 1000 fsverity digest --hash-alg=sha512 >/dev/null
sync -f "$dest"
