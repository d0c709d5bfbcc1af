#!/usr/bin/env bash
# Builds opa-bundle/bundle.tar.gz (policy.wasm, data.json, .manifest) from rego/ with the OPA CLI.
#
#   scripts/build-bundle.sh          rebuild only when the bundle's .manifest revision differs
#                                    from the revision of the sources (scripts/bundle-revision.mjs)
#   scripts/build-bundle.sh --check  exit 1 when the committed bundle is stale; build nothing
#
# Staleness is decided by content, never by mtime: git checkouts make mtimes useless.
# The OPA binary is $OPA, else .tools/bin/opa (make tools).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

BUNDLE=opa-bundle/bundle.tar.gz
CAPABILITIES=opa-bundle/capabilities.json
ENTRYPOINT=agentpdp/decision
revision_tool=(node scripts/bundle-revision.mjs)

mode=build
case "${1:-}" in
  "") ;;
  --check) mode=check ;;
  *) echo "usage: scripts/build-bundle.sh [--check]" >&2; exit 2 ;;
esac
[ $# -le 1 ] || { echo "usage: scripts/build-bundle.sh [--check]" >&2; exit 2; }

want=$("${revision_tool[@]}")
# Empty when the bundle is missing or unreadable: both count as stale.
have=$("${revision_tool[@]}" --of "$BUNDLE" 2>/dev/null) || have=""

if [ "$have" = "$want" ]; then
  [ "$mode" = check ] || echo "$BUNDLE is up to date (revision $want)"
  exit 0
fi

if [ "$mode" = check ]; then
  echo "$BUNDLE is out of date with rego/: run 'make bundle' and commit it" >&2
  exit 1
fi

opa=${OPA:-.tools/bin/opa}
if ! [ -x "$opa" ] && ! command -v "$opa" >/dev/null 2>&1; then
  echo "no OPA binary at '$opa': run 'make tools' or set OPA=/path/to/opa" >&2
  exit 1
fi

# Only the hashed sources are compiled: never *_test.rego, never a JSON/YAML file that would
# become bundle data. Relative paths keep the build machine's layout out of the bundle.
sources=$("${revision_tool[@]}" --sources)
rego_files=()
while IFS= read -r path; do
  case "$path" in *.rego) rego_files+=("$path") ;; esac
done <<<"$sources"
[ ${#rego_files[@]} -gt 0 ] || { echo "no .rego sources under rego/" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$opa" build \
  --target wasm \
  --capabilities "$CAPABILITIES" \
  --entrypoint "$ENTRYPOINT" \
  --revision "$want" \
  --output "$work/bundle.tar.gz" \
  "${rego_files[@]}"

"${revision_tool[@]}" --verify "$work/bundle.tar.gz"
mv "$work/bundle.tar.gz" "$BUNDLE"
echo "built $BUNDLE (revision $want, ${#rego_files[@]} rego files)"
