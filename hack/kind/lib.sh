# Shared by hack/kind/e2e.sh and hack/kind/local-cluster.sh (sourced, not
# run): how Multus and whereabouts are installed, whichever images they run
# (the releases' public ones, or those hack/kind/images.sh builds here), and
# how a manifest's public images are swapped for local stand-ins.
# shellcheck shell=bash

log() { printf '\n==> %s\n' "$*" >&2; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

# Debian's packages that building the kind setup needs, installed when
# missing (as root): libseccomp-dev for runc's seccomp build, debootstrap for
# the Debian base image.
ensure_build_packages() {
  local missing=()
  [[ -f /usr/include/seccomp.h ]] || missing+=(libseccomp-dev)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  [[ ${#missing[@]} -eq 0 ]] && return
  [[ ${EUID} -eq 0 ]] || fail "missing ${missing[*]}; as root: apt-get install ${missing[*]}"
  log "installing ${missing[*]} (Debian's packages)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
}

# Builds (or finds cached) the binaries of the kind setup and sets the
# variables hack/kind/build.ts prints (KIND, KUBERNETES_DIR, ...), with Node
# 24 from the npm package `node` as the npm scripts run it (the machine's own
# may be older). Needs repo_root.
load_kind_binaries() {
  local root=${repo_root:?load_kind_binaries needs repo_root} node=node assignments
  ensure_build_packages
  [[ -x ${root}/node_modules/.bin/node ]] && node=${root}/node_modules/.bin/node
  assignments=$(cd "${root}" && nice -n 15 "${node}" hack/kind/build.ts)
  eval "${assignments}"
}

# Writes into DIR a kustomization of Multus' thick-plugin manifest
# (multus-daemonset-thick.yml, already in DIR) running IMAGE (name:tag). The
# release's manifest names a snapshot image, hence the pin; its 50Mi memory
# limit is known to OOM-kill the daemon when many pods start at once
# (k8snetworkplumbingwg/multus-cni#1346).
multus_kustomization() {
  local dir=$1 image=$2
  cat >"${dir}/kustomization.yaml" <<EOF
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [multus-daemonset-thick.yml]
images:
  - name: ghcr.io/k8snetworkplumbingwg/multus-cni
    newName: ${image%:*}
    newTag: ${image##*:}
patches:
  - target: {kind: DaemonSet, name: kube-multus-ds}
    patch: |-
      - op: replace
        path: /spec/template/spec/containers/0/resources
        value: {requests: {cpu: 100m, memory: 64Mi}, limits: {memory: 512Mi}}
EOF
}

# Multus from DIR (see multus_kustomization), then waits for its DaemonSet.
install_multus_from() {
  local dir=$1 image=$2
  log "installing Multus (thick plugin) as ${image}"
  multus_kustomization "${dir}" "${image}"
  kubectl apply -k "${dir}"
  kubectl -n kube-system rollout status daemonset/kube-multus-ds --timeout=300s
}

# The files of whereabouts' doc/crds/ that install it: its CRDs and DaemonSet.
readonly WHEREABOUTS_FILES=(
  whereabouts.cni.cncf.io_ippools.yaml
  whereabouts.cni.cncf.io_overlappingrangeipreservations.yaml
  whereabouts.cni.cncf.io_nodeslicepools.yaml
  daemonset-install.yaml
)

# whereabouts from DIR (holding WHEREABOUTS_FILES) running IMAGE (name:tag),
# then waits for its DaemonSet.
install_whereabouts_from() {
  local dir=$1 image=$2 file
  log "installing whereabouts as ${image}"
  {
    echo "apiVersion: kustomize.config.k8s.io/v1beta1"
    echo "kind: Kustomization"
    echo "resources:"
    for file in "${WHEREABOUTS_FILES[@]}"; do echo "  - ${file}"; done
    echo "images:"
    echo "  - name: ghcr.io/k8snetworkplumbingwg/whereabouts"
    echo "    newName: ${image%:*}"
    echo "    newTag: ${image##*:}"
  } >"${dir}/kustomization.yaml"
  kubectl apply -k "${dir}"
  kubectl -n kube-system rollout status daemonset/whereabouts --timeout=300s
}

# Prints the manifests FILE..., one YAML document stream (a --- between
# files), with every `image: PUBLIC` that NETSERVICE_E2E_IMAGES maps
# ("PUBLIC=LOCAL PUBLIC=LOCAL ...") replaced by its local stand-in.
with_local_images() {
  local script=(-e '') pair file
  for pair in ${NETSERVICE_E2E_IMAGES:-}; do
    [[ ${pair} == *=* ]] || fail "NETSERVICE_E2E_IMAGES: \"${pair}\" is not PUBLIC=LOCAL"
    script+=(-e "s|^\([[:space:]-]*image:[[:space:]]*\)${pair%%=*}[[:space:]]*\$|\1${pair#*=}|")
  done
  for file in "$@"; do
    echo "---"
    sed "${script[@]}" "${file}"
  done
}
