#!/usr/bin/env bash
# The Debian base image of every locally built image (kind node, kubeadm's
# images, Multus, whereabouts, netservice) on a machine that reaches Debian's
# mirror but no image registry: debootstrap's minbase variant of bookworm,
# what debian:bookworm-slim holds.
#
#   hack/kind/base-image.sh rootfs   # debootstrap into the cache (needs no Docker)
#   hack/kind/base-image.sh image    # the rootfs as image ${BASE_IMAGE}, loaded into Docker
#   hack/kind/base-image.sh name     # prints ${BASE_IMAGE}
#
# Cached under ${NETSERVICE_CACHE:-~/.cache/netservice}/images/<name>/:
#   rootfs.tar  the debootstrap result (about 5 minutes to make)
#   image.tar   `docker save` of the imported image, so a new Docker engine
#               only loads it
# Each step is skipped when its file exists; delete the folder to rebuild.
set -euo pipefail

readonly SUITE=bookworm
readonly VARIANT=minbase
readonly MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
readonly BASE_IMAGE=${BASE_IMAGE:-netservice.local/debian:${SUITE}-${VARIANT}}

cache=${NETSERVICE_CACHE:-${HOME}/.cache/netservice}
readonly dir="${cache}/images/debian-${SUITE}-${VARIANT}"

log() { printf '[netservice] %s\n' "$*" >&2; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

ensure_rootfs() {
  [[ -s ${dir}/rootfs.tar ]] && return
  command -v debootstrap >/dev/null || fail "debootstrap is missing: apt-get install debootstrap"
  mkdir -p "${dir}"
  local target started=${SECONDS}
  target=$(mktemp -d "${dir}/.debootstrap-XXXXXX")
  # shellcheck disable=SC2064 # expand now: the folder of this run
  trap "rm -rf '${target}'" EXIT
  log "debootstrap --variant=${VARIANT} ${SUITE} from ${MIRROR} (about 5 minutes)"
  nice -n 15 debootstrap --variant="${VARIANT}" "${SUITE}" "${target}" "${MIRROR}" >"${dir}/debootstrap.log" 2>&1 ||
    fail "debootstrap failed; its log: ${dir}/debootstrap.log"
  # As the official slim images: no package lists or caches, which go stale anyway.
  rm -rf "${target}"/var/lib/apt/lists/* "${target}"/var/cache/apt/*.bin "${target}"/var/cache/apt/archives/*.deb
  tar --numeric-owner -C "${target}" -cf "${dir}/rootfs.tar.partial" .
  mv "${dir}/rootfs.tar.partial" "${dir}/rootfs.tar"
  rm -rf "${target}"
  trap - EXIT
  local size
  size=$(du -h "${dir}/rootfs.tar")
  log "rootfs ${dir}/rootfs.tar: ${size%%$'\t'*} in $((SECONDS - started)) s"
}

ensure_image() {
  if ! docker info >/dev/null 2>&1; then fail "no Docker engine answers (hack/kind/docker.sh up starts one)"; fi
  if docker image inspect "${BASE_IMAGE}" >/dev/null 2>&1; then
    [[ -s ${dir}/image.tar ]] || save_image
    return
  fi
  if [[ -s ${dir}/image.tar ]]; then
    log "loading ${BASE_IMAGE} from ${dir}/image.tar"
    docker load --input "${dir}/image.tar" >&2
    return
  fi
  ensure_rootfs
  log "importing ${dir}/rootfs.tar as ${BASE_IMAGE}"
  docker import --change 'CMD ["bash"]' "${dir}/rootfs.tar" "${BASE_IMAGE}" >&2
  save_image
}

# Keeps the engine's image as ${dir}/image.tar. The engine may hold the image
# while the cache is new or was cleared, so the folder may not exist yet.
save_image() {
  mkdir -p "${dir}"
  docker save --output "${dir}/image.tar.partial" "${BASE_IMAGE}"
  mv "${dir}/image.tar.partial" "${dir}/image.tar"
}

case ${1:-} in
  rootfs) ensure_rootfs ;;
  image) ensure_image ;;
  name) echo "${BASE_IMAGE}" ;;
  *) echo "usage: hack/kind/base-image.sh rootfs|image|name" >&2; exit 2 ;;
esac
