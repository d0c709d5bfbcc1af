#!/usr/bin/env bash
# Builds an OPA bundle (policy.wasm, data.json, .manifest) from rego/, and Rego packs if given, with the OPA CLI.
#
#   scripts/build-bundle.sh          rebuild opa-bundle/bundle.tar.gz only when its .manifest revision differs
#                                    from the revision of the sources (scripts/bundle-revision.mjs)
#   scripts/build-bundle.sh --check  exit 1 when the committed bundle is stale; build nothing
#   scripts/build-bundle.sh --pack DIR [--pack DIR]... --output FILE [--check]
#                                    the same for FILE, a bundle of rego/ and the packs (docs/bundles.md, "Rego
#                                    packs"): one WASM module with agentpdp/decision and every pack's entrypoints.
#                                    The committed bundle never holds packs: --pack needs --output.
#
# Staleness is decided by content, never by mtime: git checkouts make mtimes useless. With packs, the revision
# covers their sources too. The OPA binary is $OPA, else .tools/bin/opa (make tools).
set -euo pipefail

usage() {
  echo "usage: scripts/build-bundle.sh [--check] [--pack DIR]... [--output FILE]" >&2
  exit 2
}

mode=build
output=""
packs=()
while [ $# -gt 0 ]; do
  case "$1" in
    --check) mode=check ;;
    --pack) [ $# -ge 2 ] || usage; packs+=("$(cd "$2" 2>/dev/null && pwd)") || { echo "no pack folder at '$2'" >&2; exit 1; }; shift ;;
    --output) [ $# -ge 2 ] && [ -n "$2" ] || usage; output=$2; shift ;;
    *) usage ;;
  esac
  shift
done
# Relative to where it was called from (make runs it from the root, but a person may not).
[ -z "$output" ] || case "$output" in /*) ;; *) output="$PWD/$output" ;; esac

cd "$(dirname "${BASH_SOURCE[0]}")/.."

BUNDLE=${output:-opa-bundle/bundle.tar.gz}
CAPABILITIES=opa-bundle/capabilities.json
ENTRYPOINT=agentpdp/decision
pack_args=()
for pack in ${packs[@]+"${packs[@]}"}; do pack_args+=(--pack "$pack"); done
revision_tool=(node scripts/bundle-revision.mjs ${pack_args[@]+"${pack_args[@]}"})

if [ ${#packs[@]} -gt 0 ] && [ -z "$output" ]; then
  echo "--pack needs --output FILE: opa-bundle/bundle.tar.gz is built from rego/ alone" >&2
  exit 2
fi

# Every entrypoint: the agent decision's, then the packs' (checked: no package under agentpdp, see rego-pack.mjs).
entrypoints=("$ENTRYPOINT")
if [ ${#packs[@]} -gt 0 ]; then
  pack_entrypoints=$(node scripts/rego-pack.mjs "${packs[@]}")
  while IFS= read -r entrypoint; do entrypoints+=("$entrypoint"); done <<<"$pack_entrypoints"
fi

want=$("${revision_tool[@]}")
# Empty when the bundle is missing or unreadable: both count as stale.
have=$("${revision_tool[@]}" --of "$BUNDLE" 2>/dev/null) || have=""

if [ "$have" = "$want" ]; then
  [ "$mode" = check ] || echo "$BUNDLE is up to date (revision $want)"
  exit 0
fi

if [ "$mode" = check ]; then
  if [ ${#packs[@]} -gt 0 ]; then
    echo "$BUNDLE is out of date with rego/ and the packs: build it again" >&2
  else
    echo "$BUNDLE is out of date with rego/: run 'make bundle' and commit it" >&2
  fi
  exit 1
fi

opa=${OPA:-.tools/bin/opa}
if ! [ -x "$opa" ] && ! command -v "$opa" >/dev/null 2>&1; then
  echo "no OPA binary at '$opa': run 'make tools' or set OPA=/path/to/opa" >&2
  exit 1
fi
case "$opa" in */*) opa=$(cd "$(dirname "$opa")" && pwd)/$(basename "$opa") ;; esac

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Only the hashed sources are compiled: never *_test.rego, never a JSON/YAML file that would become bundle data.
# They are compiled under the names they are hashed under (rego/…, packs/<folder>/…), from a copy: relative
# paths keep the build machine's layout out of the bundle, wherever a pack lives.
layout=$("${revision_tool[@]}" --layout)
rego_files=()
while IFS=$'\t' read -r name file; do
  case "$name" in *.rego) ;; *) continue ;; esac
  mkdir -p "$work/src/$(dirname "$name")"
  cp "$file" "$work/src/$name"
  rego_files+=("$name")
done <<<"$layout"
[ ${#rego_files[@]} -gt 0 ] || { echo "no .rego sources under rego/" >&2; exit 1; }

entrypoint_args=()
for entrypoint in "${entrypoints[@]}"; do entrypoint_args+=(--entrypoint "$entrypoint"); done

# OPA prints its compile errors on stdout: they go to stderr with the other errors.
(cd "$work/src" && "$opa" build \
  --target wasm \
  --capabilities "$OLDPWD/$CAPABILITIES" \
  "${entrypoint_args[@]}" \
  --revision "$want" \
  --output "$work/bundle.tar.gz" \
  "${rego_files[@]}" >&2)

"${revision_tool[@]}" --verify "$work/bundle.tar.gz"
mkdir -p "$(dirname "$BUNDLE")"
mv "$work/bundle.tar.gz" "$BUNDLE"
echo "built $BUNDLE (revision $want, ${#rego_files[@]} rego files, entrypoints ${entrypoints[*]})"
