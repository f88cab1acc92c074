#!/usr/bin/env bash
# Fetches the chat page's front-end libraries (and the accessibility checker
# its browser test injects) from the npm registry at the versions pinned in
# hack/webui-vendor.lock, checks each tarball against the pinned sha512
# integrity and against the integrity the registry publishes for that
# version, and writes the listed files where the lock says, checking each
# file's sha256. A "file" line whose sha256 is "-" (a version bump) gets its
# sum filled in. The page needs no build step: these files are served as
# they come from the package.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOCK="${ROOT}/hack/webui-vendor.lock"
REGISTRY="${NPM_REGISTRY:-https://registry.npmjs.org}"
TMP="$(mktemp -d)"
trap 'rm -rf "${TMP}"' EXIT

log() { echo "webui-vendor: $*" >&2; }
die() { log "$*"; exit 1; }

sri512() { printf 'sha512-%s' "$(openssl dgst -sha512 -binary "$1" | base64 -w0)"; }

fetch_package() { # name version integrity -> extracts into ${TMP}/<name>
  local name="$1" version="$2" integrity="$3"
  local base="${name##*/}" dir="${TMP}/${name//\//_}"
  local url="${REGISTRY}/${name}/-/${base}-${version}.tgz"
  log "fetching ${name}@${version}"
  curl -fsSL --retry 3 -o "${dir}.tgz" "${url}" || die "cannot download ${url}"
  local got; got="$(sri512 "${dir}.tgz")"
  [[ "${got}" == "${integrity}" ]] || die "${name}@${version}: tarball is ${got}, the lock pins ${integrity}"
  # The registry's own record of the version must agree with the pin.
  local meta published
  meta="$(curl -fsSL --retry 3 "${REGISTRY}/${name}/${version}")" || die "cannot read ${name}@${version} from the registry"
  published="$(grep -o '"integrity": *"sha512-[A-Za-z0-9+/=]*"' <<<"${meta}" | head -n1 | grep -o 'sha512-[A-Za-z0-9+/=]*' || true)"
  [[ "${published}" == "${integrity}" ]] || die "${name}@${version}: the registry publishes ${published:-no integrity}, the lock pins ${integrity}"
  mkdir -p "${dir}"
  tar -xzf "${dir}.tgz" -C "${dir}"
}

out="${TMP}/lock"
current=""
while IFS= read -r line || [[ -n "${line}" ]]; do
  read -r kind a b c <<<"${line}" || true
  case "${kind}" in
  package)
    fetch_package "${a}" "${b}" "${c}"
    current="${TMP}/${a//\//_}"
    ;;
  file)
    [[ -n "${current}" ]] || die "a file line before any package line: ${line}"
    src="${current}/${a}" dst="${ROOT}/${b}"
    [[ -f "${src}" ]] || die "${a} is not in the package"
    sum="$(sha256sum "${src}" | cut -d' ' -f1)"
    if [[ "${c}" != "-" && "${c}" != "${sum}" ]]; then
      die "${a}: sha256 ${sum}, the lock says ${c}"
    fi
    mkdir -p "$(dirname "${dst}")"
    cp "${src}" "${dst}"
    line="file ${a} ${b} ${sum}"
    ;;
  esac
  echo "${line}" >>"${out}"
done <"${LOCK}"
cp "${out}" "${LOCK}"
log "vendored files match hack/webui-vendor.lock"
