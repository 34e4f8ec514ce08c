#!/usr/bin/env bash
# Every image of the kind cluster, built on this machine from the binaries of
# hack/kind/build.ts and the Debian base of hack/kind/base-image.sh, for a
# machine that reaches no image registry. Each image is kept as a
# `docker save` tarball under ${NETSERVICE_CACHE:-~/.cache/netservice}/images/,
# so a new Docker engine only loads it; its tag carries the versions (and,
# for the node image, a hash of its recipe), so a change builds a new one.
#
#   hack/kind/images.sh node          # the kind node image, with kubeadm's images inside
#   hack/kind/images.sh kind-config   # prints the kind config for that image
#   hack/kind/images.sh multus        # the Multus thick plugin's image; prints its name
#   hack/kind/images.sh whereabouts   # the whereabouts image; prints its name
#   hack/kind/images.sh netservice IMAGE  # netservice from the repository's Dockerfile, on local Node 24 bases
#   hack/kind/images.sh workloads     # stand-ins for the samples' images; prints "PUBLIC=LOCAL" pairs
#
# kubeadm's images are named ${REPOSITORY}/NAME:TAG, never as the upstream
# images they stand in for; the kind config sets kubeadm's imageRepository
# (and the CoreDNS and etcd tags) to match. Needs a Docker engine
# (hack/kind/docker.sh up).
set -euo pipefail

readonly REPOSITORY=netservice.local
readonly PAUSE_TAG=3.10.2

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
readonly repo_root
readonly kind_dir="${repo_root}/hack/kind"
cache=${NETSERVICE_CACHE:-${HOME}/.cache/netservice}
readonly images_dir="${cache}/images"

# The binaries' paths, as hack/kind/build.ts prints them (load_binaries).
KIND='' KUBERNETES_DIR='' KUBERNETES_NODE_DIR='' ETCD='' CONTAINERD_DIR='' RUNC='' CRICTL='' CNI_BIN_DIR='' COREDNS='' PAUSE=''
MULTUS_DIR='' WHEREABOUTS_DIR=''

log() { printf '[netservice] %s\n' "$*" >&2; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

# The binaries' paths (KIND, KUBERNETES_DIR, ...), built when missing.
load_binaries() {
  local assignments
  # Node 24 from the npm package `node` (npm ci), as the npm scripts run it: the machine's own may be older.
  local node=node
  [[ -x ${repo_root}/node_modules/.bin/node ]] && node=${repo_root}/node_modules/.bin/node
  assignments=$(cd "${repo_root}" && nice -n 15 "${node}" hack/kind/build.ts)
  eval "${assignments}"
  KUBERNETES_VERSION=$("${KUBERNETES_NODE_DIR}/kubelet" --version)
  KUBERNETES_VERSION=${KUBERNETES_VERSION#Kubernetes }
  ETCD_TAG=$("${ETCD}" --version)
  ETCD_TAG=$(sed -n 's/^etcd Version: *//p' <<<"${ETCD_TAG}")-0
  COREDNS_TAG=$("${COREDNS}" -version)
  COREDNS_TAG=v$(sed -n 's/^CoreDNS-//p' <<<"${COREDNS_TAG}")
  [[ ${ETCD_TAG} != -0 && ${COREDNS_TAG} != v ]] || fail "cannot read the etcd or CoreDNS version"
  BASE_IMAGE=$("${kind_dir}/base-image.sh" name)
}

# Loads IMAGE from its cached tarball, or builds it with the given command and caches it.
ensure_image() {
  local image=$1 tarball
  shift
  tarball="${images_dir}/saved/${image//[\/:]/_}.tar"
  if docker image inspect "${image}" >/dev/null 2>&1; then
    [[ -s ${tarball} ]] || save_image "${image}" "${tarball}"
    return
  fi
  if [[ -s ${tarball} ]]; then
    docker load --input "${tarball}" >/dev/null
    return
  fi
  local started=${SECONDS}
  log "building ${image}"
  "$@"
  save_image "${image}" "${tarball}"
  local size
  size=$(docker image inspect --format '{{.Size}}' "${image}")
  log "built ${image}: $((size / 1048576)) MiB in $((SECONDS - started)) s"
}

save_image() {
  mkdir -p "$(dirname "$2")"
  docker save --output "$2.partial" "$1"
  mv "$2.partial" "$2"
}

# An image of one binary on the Debian base: binary, entrypoint (or none), packages to install.
build_binary_image() {
  local image=$1 binary=$2 entrypoint=$3 packages=${4:-} context
  context=$(mktemp -d)
  cp "${binary}" "${context}/"
  {
    echo "FROM ${BASE_IMAGE}"
    if [[ -n ${packages} ]]; then
      echo "RUN DEBIAN_FRONTEND=noninteractive apt-get update -qq && apt-get install -y -qq --no-install-recommends ${packages} && rm -rf /var/lib/apt/lists/*"
    fi
    echo "COPY $(basename "${binary}") /usr/local/bin/"
    if [[ -n ${entrypoint} ]]; then echo "ENTRYPOINT [\"/usr/local/bin/$(basename "${binary}")\"]"; fi
  } >"${context}/Dockerfile"
  nice -n 15 docker build --quiet --tag "${image}" "${context}" >/dev/null
  rm -rf "${context}"
}

# The images `kubeadm config images list` names for imageRepository ${REPOSITORY}.
kubeadm_images() {
  local name
  for name in kube-apiserver kube-controller-manager kube-scheduler; do
    ensure_image "${REPOSITORY}/${name}:${KUBERNETES_VERSION}" build_binary_image "${REPOSITORY}/${name}:${KUBERNETES_VERSION}" "${KUBERNETES_DIR}/${name}" ""
  done
  ensure_image "${REPOSITORY}/kube-proxy:${KUBERNETES_VERSION}" build_binary_image "${REPOSITORY}/kube-proxy:${KUBERNETES_VERSION}" \
    "${KUBERNETES_NODE_DIR}/kube-proxy" "" "iptables nftables conntrack ipset kmod"
  ensure_image "${REPOSITORY}/etcd:${ETCD_TAG}" build_binary_image "${REPOSITORY}/etcd:${ETCD_TAG}" "${ETCD}" ""
  ensure_image "${REPOSITORY}/coredns:${COREDNS_TAG}" build_binary_image "${REPOSITORY}/coredns:${COREDNS_TAG}" "${COREDNS}" entrypoint
  ensure_image "${REPOSITORY}/pause:${PAUSE_TAG}" build_binary_image "${REPOSITORY}/pause:${PAUSE_TAG}" "${PAUSE}" entrypoint
  printf '%s\n' \
    "${REPOSITORY}/kube-apiserver:${KUBERNETES_VERSION}" "${REPOSITORY}/kube-controller-manager:${KUBERNETES_VERSION}" \
    "${REPOSITORY}/kube-scheduler:${KUBERNETES_VERSION}" "${REPOSITORY}/kube-proxy:${KUBERNETES_VERSION}" \
    "${REPOSITORY}/etcd:${ETCD_TAG}" "${REPOSITORY}/coredns:${COREDNS_TAG}" "${REPOSITORY}/pause:${PAUSE_TAG}"
}

kind_module_dir() {
  (cd "${repo_root}/hack/tools/kind" && go list -m -f '{{.Dir}}' sigs.k8s.io/kind)
}

# The node image without kubeadm's images: kind's base image, locally.
build_node_base() {
  local image=$1 context kind_files
  kind_files="$(kind_module_dir)/images/base/files"
  context=$(mktemp -d)
  mkdir -p "${context}/bin" "${context}/sbin" "${context}/kube" "${context}/cni"
  cp -r "${kind_files}" "${context}/files"
  chmod -R u+w,go-w "${context}/files"
  cp "${CONTAINERD_DIR}"/{containerd,containerd-shim-runc-v2,ctr} "${CRICTL}" "${context}/bin/"
  cp "${RUNC}" "${context}/sbin/"
  cp "${KUBERNETES_NODE_DIR}"/{kubelet,kubeadm} "${KUBERNETES_DIR}/kubectl" "${context}/kube/"
  cp "${CNI_BIN_DIR}"/* "${context}/cni/"
  cp "${kind_dir}/images/node.Dockerfile" "${context}/Dockerfile"
  nice -n 15 docker build --tag "${image}" \
    --build-arg "BASE_IMAGE=${BASE_IMAGE}" \
    --build-arg "KUBERNETES_VERSION=${KUBERNETES_VERSION}" \
    --build-arg "SANDBOX_IMAGE=${REPOSITORY}/pause:${PAUSE_TAG}" \
    "${context}" >&2
  rm -rf "${context}"
}

# The node image: its base plus kubeadm's images in containerd's store, as
# `kind build node-image` leaves them (kind's own build pulls them from
# registries, so it cannot run here).
build_node() {
  local image=$1 base=$2 container
  shift 2
  # --init: a PID 1 that reaps containerd once it is stopped.
  container=$(docker run --detach --init --privileged --entrypoint sleep "${base}" infinity)
  # shellcheck disable=SC2064 # expand now: this container
  trap "docker rm --force '${container}' >/dev/null" EXIT
  docker exec "${container}" bash -c 'nohup containerd >/var/log/containerd-build.log 2>&1 &'
  local tries=0
  until docker exec "${container}" ctr version >/dev/null 2>&1; do
    tries=$((tries + 1))
    [[ ${tries} -lt 30 ]] || fail "containerd did not start in the node image: $(docker exec "${container}" cat /var/log/containerd-build.log || true)"
    sleep 1
  done
  local loaded
  for loaded in "$@"; do
    docker save "${loaded}" | docker exec --interactive "${container}" \
      ctr --namespace=k8s.io images import --label=io.cri-containerd.pinned=pinned --all-platforms --no-unpack --digests - >&2
  done
  docker exec "${container}" ctr --namespace=k8s.io images list --quiet >&2
  docker exec "${container}" pkill containerd
  docker exec "${container}" bash -c 'while pgrep -x containerd >/dev/null; do sleep 0.2; done; rm -f /var/log/containerd-build.log'
  docker stop --time 1 "${container}" >/dev/null
  # The container keeps the image's STOPSIGNAL (SIGRTMIN+3, for systemd); Docker 20.10 cannot --change it.
  docker commit \
    --change 'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]' \
    --change 'CMD []' \
    "${container}" "${image}" >/dev/null
  docker rm --force "${container}" >/dev/null
  trap - EXIT
}

node_image_name() {
  local recipe
  # The recipe: the Dockerfile and the functions that build the node image
  # and what goes into it (not the rest of this script).
  recipe=$(cat "${kind_dir}/images/node.Dockerfile"; declare -f build_node_base build_node build_node_with_base build_binary_image kubeadm_images)
  recipe=$(sha256sum <<<"${recipe}${KIND}${KUBERNETES_DIR}${KUBERNETES_NODE_DIR}${CONTAINERD_DIR}${RUNC}${CRICTL}${CNI_BIN_DIR}${BASE_IMAGE}")
  echo "${REPOSITORY}/kind-node:${KUBERNETES_VERSION}-${recipe:0:12}"
}

node_image() {
  load_binaries
  "${kind_dir}/base-image.sh" image
  local images node_image
  images=$(kubeadm_images)
  node_image=$(node_image_name)
  # shellcheck disable=SC2086 # one image a word
  ensure_image "${node_image}" build_node_with_base "${node_image}" ${images}
  prune_node_images "${node_image}"
  echo "${node_image}"
}

build_node_with_base() {
  local image=$1
  shift
  build_node_base "${image}-base"
  build_node "${image}" "${image}-base" "$@"
  docker rmi "${image}-base" >/dev/null
}

# Node images of other recipes (about 1.3 GB each) go, from Docker and the cache.
prune_node_images() {
  local keep=$1 image
  for image in $(docker images --format '{{.Repository}}:{{.Tag}}' "${REPOSITORY}/kind-node"); do
    [[ ${image} == "${keep}" ]] || docker rmi "${image}" >/dev/null 2>&1 || true
  done
  find "${images_dir}/saved" -name "${REPOSITORY}_kind-node_*.tar" ! -name "${keep//[\/:]/_}.tar" -delete
}

# Multus' images/Dockerfile.thick, with binaries built here: the daemon,
# and the shim that its init container (install_multus) copies to the node.
build_multus_image() {
  local image=$1 context
  context=$(mktemp -d)
  mkdir -p "${context}/bin"
  cp "${MULTUS_DIR}"/{multus-daemon,multus-shim,install_multus,passthru} "${context}/bin/"
  {
    echo "FROM ${BASE_IMAGE}"
    echo "COPY bin/ /usr/src/multus-cni/bin/"
    echo 'ENTRYPOINT ["/usr/src/multus-cni/bin/multus-daemon"]'
  } >"${context}/Dockerfile"
  nice -n 15 docker build --quiet --tag "${image}" "${context}" >/dev/null
  rm -rf "${context}"
}

multus_image() {
  load_binaries
  "${kind_dir}/base-image.sh" image
  local version image
  version=${MULTUS_DIR##*/multus-thick-}
  image="${REPOSITORY}/multus-cni:${version}-thick"
  ensure_image "${image}" build_multus_image "${image}"
  echo "${image}"
}

whereabouts_module_dir() {
  (cd "${repo_root}/hack/tools/whereabouts" && go list -m -f '{{.Dir}}' github.com/k8snetworkplumbingwg/whereabouts)
}

# whereabouts' Dockerfile, with the binaries built here: the plugin and
# ip-control-loop at /, beside its install and token-watcher scripts.
build_whereabouts_image() {
  local image=$1 context module
  module=$(whereabouts_module_dir)
  context=$(mktemp -d)
  cp "${WHEREABOUTS_DIR}"/{whereabouts,ip-control-loop} "${module}"/script/{install-cni.sh,lib.sh,token-watcher.sh} "${context}/"
  chmod 0755 "${context}"/*
  {
    echo "FROM ${BASE_IMAGE}"
    # Upstream's image is Alpine: its DaemonSet runs these scripts with sh,
    # and they use `source` and `[ a == b ]`, which Debian's sh (dash) lacks.
    # bash as sh has both.
    echo "RUN ln -sf bash /bin/sh"
    echo "COPY whereabouts ip-control-loop install-cni.sh lib.sh token-watcher.sh /"
    echo 'CMD ["/install-cni.sh"]'
  } >"${context}/Dockerfile"
  nice -n 15 docker build --quiet --tag "${image}" "${context}" >/dev/null
  rm -rf "${context}"
}

whereabouts_image() {
  load_binaries
  "${kind_dir}/base-image.sh" image
  local image="${REPOSITORY}/whereabouts:${WHEREABOUTS_DIR##*/whereabouts-}"
  ensure_image "${image}" build_whereabouts_image "${image}"
  echo "${image}"
}

# Node 24 as the two stages of the repository's Dockerfile expect it, where
# no registry serves node:24 or distroless' nodejs24: the binary of the npm
# package `node` (what the npm scripts run here), stripped, on the Debian
# base. The build stage gets npm (this machine's, plain JavaScript) and CA
# certificates for `npm ci`, with the authorities this machine adds to
# Debian's (/usr/local/share/ca-certificates: e.g. an egress proxy's, which
# npm must trust as it does here); the runtime has Node at /nodejs/bin/node
# and no certificates beyond Node's own.
node_binary() {
  local node=${repo_root}/node_modules/node/bin/node
  [[ -x ${node} ]] || fail "no Node 24 at ${node}: run npm ci first"
  echo "${node}"
}

build_node_base_image() {
  local image=$1 stage=$2 context npm_dir
  context=$(mktemp -d)
  cp "$(node_binary)" "${context}/node"
  strip "${context}/node"
  {
    echo "FROM ${BASE_IMAGE}"
    if [[ ${stage} == build ]]; then
      # npm's own folder: the one that runs `npm ci` here.
      npm_dir=$(readlink -f "$(command -v npm)")
      npm_dir=${npm_dir%/bin/npm-cli.js}
      [[ -f ${npm_dir}/package.json ]] || fail "no npm at ${npm_dir}"
      cp -r "${npm_dir}" "${context}/npm"
      mkdir "${context}/ca"
      if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then cp /usr/local/share/ca-certificates/*.crt "${context}/ca/"; fi
      echo "COPY ca/ /usr/local/share/ca-certificates/"
      echo "RUN DEBIAN_FRONTEND=noninteractive apt-get update -qq && apt-get install -y -qq --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*"
      echo "ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt"
      echo "COPY node /usr/local/bin/node"
      echo "COPY npm /usr/local/lib/node_modules/npm"
      echo "RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm && npm --version"
    else
      echo "COPY node /nodejs/bin/node"
    fi
  } >"${context}/Dockerfile"
  nice -n 15 docker build --quiet --tag "${image}" "${context}" >/dev/null
  rm -rf "${context}"
}

netservice_image() {
  local image=${1:?usage: images.sh netservice IMAGE} version build runtime
  "${kind_dir}/base-image.sh" image
  BASE_IMAGE=$("${kind_dir}/base-image.sh" name)
  version=$("$(node_binary)" --version)
  build="${REPOSITORY}/node-build:${version#v}"
  runtime="${REPOSITORY}/node-runtime:${version#v}"
  ensure_image "${build}" build_node_base_image "${build}" build
  ensure_image "${runtime}" build_node_base_image "${runtime}" runtime
  log "building ${image} from the Dockerfile on ${build} and ${runtime}"
  # The classic builder: BuildKit would fetch the Dockerfile's syntax image from a registry.
  DOCKER_BUILDKIT=0 nice -n 15 docker build --quiet --tag "${image}" \
    --build-arg "BUILD_IMAGE=${build}" --build-arg "RUNTIME_IMAGE=${runtime}" "${repo_root}" >/dev/null
  local size
  size=$(docker image inspect --format '{{.Size}}' "${image}")
  log "built ${image}: $((size / 1048576)) MiB"
}

# The samples run ubuntu:latest and the DNS client busybox:1.37: here the
# Debian base stands in for the first, Debian's busybox for the second (the
# same applets: sh, ping, nslookup, nc). Prints "PUBLIC=LOCAL" pairs, the
# form of NETSERVICE_E2E_IMAGES.
build_busybox_image() {
  local image=$1 context
  context=$(mktemp -d)
  {
    echo "FROM ${BASE_IMAGE}"
    echo "RUN DEBIAN_FRONTEND=noninteractive apt-get update -qq && apt-get install -y -qq --no-install-recommends busybox && rm -rf /var/lib/apt/lists/* && mkdir -p /opt/busybox && busybox --install -s /opt/busybox"
    echo 'ENV PATH=/opt/busybox:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
    echo 'CMD ["sh"]'
  } >"${context}/Dockerfile"
  nice -n 15 docker build --quiet --tag "${image}" "${context}" >/dev/null
  rm -rf "${context}"
}

workload_images() {
  "${kind_dir}/base-image.sh" image
  BASE_IMAGE=$("${kind_dir}/base-image.sh" name)
  local busybox="${REPOSITORY}/busybox:bookworm"
  ensure_image "${busybox}" build_busybox_image "${busybox}"
  echo "ubuntu:latest=${BASE_IMAGE} busybox:1.37=${busybox}"
}

kind_config() {
  load_binaries
  cat <<EOF
# The cluster of hack/kind/kind-config.yaml on the locally built node image
# (hack/kind/images.sh): kubeadm takes its images from ${REPOSITORY}, and no
# default CNI (kindnetd's image is not built here).
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
networking:
  disableDefaultCNI: true
kubeadmConfigPatches:
  - |
    kind: ClusterConfiguration
    imageRepository: ${REPOSITORY}
    dns:
      imageTag: ${COREDNS_TAG}
    etcd:
      local:
        imageTag: ${ETCD_TAG}
  - |
    kind: KubeletConfiguration
    failCgroupV1: false
nodes:
  - role: control-plane
  - role: worker
  - role: worker
EOF
}

case ${1:-} in
  node) node_image ;;
  kind-config) kind_config ;;
  multus) multus_image ;;
  whereabouts) whereabouts_image ;;
  netservice) netservice_image "${2:-}" ;;
  workloads) workload_images ;;
  *) echo "usage: hack/kind/images.sh node|kind-config|multus|whereabouts|netservice IMAGE|workloads" >&2; exit 2 ;;
esac
