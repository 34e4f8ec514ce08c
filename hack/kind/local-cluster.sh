#!/usr/bin/env bash
# A kind cluster from locally built images only (hack/kind/images.sh), for a
# machine that reaches no image registry: the cluster, its primary pod
# network, Multus (thick plugin) and whereabouts. `hack/kind/e2e.sh
# --build-images` (npm run test:kind) creates it this way, then installs
# netservice and tests. See "Building everything locally" in
# hack/kind/README.md.
#
#   hack/kind/local-cluster.sh create [--name NAME]   # prints `export KUBECONFIG=...` last
#   hack/kind/local-cluster.sh delete [--name NAME]
#   hack/kind/local-cluster.sh multus [--name NAME]   # (re)installs Multus on a running cluster
#   hack/kind/local-cluster.sh whereabouts [--name NAME]
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
readonly repo_root
readonly kind_dir="${repo_root}/hack/kind"
cache=${NETSERVICE_CACHE:-${HOME}/.cache/netservice}
readonly run_dir="${cache}/run"

# shellcheck source=hack/kind/lib.sh
source "${kind_dir}/lib.sh"

command=${1:-}
shift || true
cluster_name=netservice-local
while [[ $# -gt 0 ]]; do
  case $1 in
    --name) cluster_name=${2:?--name needs a value}; shift ;;
    *) fail "unknown argument: $1" ;;
  esac
  shift
done
readonly kubeconfig="${run_dir}/kind-${cluster_name}.kubeconfig"

# Set by binaries() from hack/kind/build.ts's output.
KIND='' KUBERNETES_DIR=''

binaries() {
  load_kind_binaries
}

# kindnet's job, by hand (its image is not built here): each node's pods on
# its podCIDR through ptp and host-local, and a route on every node to every
# other node's podCIDR through that node's address on kind's Docker network.
install_primary_network() {
  log "primary pod network: ptp + host-local, routes between the nodes"
  local node other cidr address
  local -A cidrs=() addresses=()
  for node in $("${KIND}" get nodes --name "${cluster_name}"); do
    cidr=$(kubectl get node "${node}" -o jsonpath='{.spec.podCIDR}')
    address=$(docker inspect --format '{{with index .NetworkSettings.Networks "kind"}}{{.IPAddress}}{{end}}' "${node}")
    [[ -n ${cidr} && -n ${address} ]] || fail "node ${node} has no podCIDR (${cidr}) or no address on network kind (${address})"
    cidrs[${node}]=${cidr}
    addresses[${node}]=${address}
  done
  for node in "${!cidrs[@]}"; do
    docker exec --interactive "${node}" sh -c 'mkdir -p /etc/cni/net.d && cat >/etc/cni/net.d/10-kind-primary.conflist' <<EOF
{
  "cniVersion": "1.0.0",
  "name": "kind-primary",
  "plugins": [
    {
      "type": "ptp",
      "ipMasq": false,
      "ipam": {"type": "host-local", "ranges": [[{"subnet": "${cidrs[${node}]}"}]], "routes": [{"dst": "0.0.0.0/0"}]}
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
    # The routes, now and at every start of the node's container (a
    # `docker stop` and `start` of a node, as test/kind/faults.test.ts does,
    # drops them), as a systemd unit in the node.
    local routes=()
    for other in "${!cidrs[@]}"; do
      [[ ${other} == "${node}" ]] && continue
      routes+=("ExecStart=/usr/sbin/ip route replace ${cidrs[${other}]} via ${addresses[${other}]}")
    done
    printf '%s\n' \
      "[Unit]" "Description=routes to the other kind nodes' pod networks (netservice's hack/kind/local-cluster.sh)" \
      "After=network.target" "[Service]" "Type=oneshot" "RemainAfterExit=yes" "${routes[@]}" \
      "[Install]" "WantedBy=multi-user.target" |
      docker exec --interactive "${node}" sh -c 'cat >/etc/systemd/system/kind-pod-routes.service'
    docker exec "${node}" systemctl enable --now kind-pod-routes.service
  done
}

# The folder of a Go module that hack/tools/TOOL pins.
module_dir() {
  (cd "${repo_root}/hack/tools/$1" && go list -m -f '{{.Dir}}' "$2")
}

# Multus' own thick-plugin manifest, from its Go module, with the image built here.
install_multus() {
  local image dir module
  image=$("${kind_dir}/images.sh" multus)
  "${KIND}" load docker-image "${image}" --name "${cluster_name}"
  module=$(module_dir multus-thick gopkg.in/k8snetworkplumbingwg/multus-cni.v4)
  dir=$(mktemp -d)
  cp "${module}/deployments/multus-daemonset-thick.yml" "${dir}/"
  chmod u+w "${dir}"/*
  install_multus_from "${dir}" "${image}"
  rm -rf "${dir}"
}

# whereabouts' own manifests, from its Go module, with the image built here.
install_whereabouts() {
  local image dir module file
  image=$("${kind_dir}/images.sh" whereabouts)
  "${KIND}" load docker-image "${image}" --name "${cluster_name}"
  module=$(module_dir whereabouts github.com/k8snetworkplumbingwg/whereabouts)
  dir=$(mktemp -d)
  for file in "${WHEREABOUTS_FILES[@]}"; do cp "${module}/doc/crds/${file}" "${dir}/"; done
  chmod u+w "${dir}"/*
  install_whereabouts_from "${dir}" "${image}"
  rm -rf "${dir}"
}

create() {
  "${kind_dir}/docker.sh" up
  binaries
  local image config
  image=$("${kind_dir}/images.sh" node)
  mkdir -p "${run_dir}"
  config="${run_dir}/kind-${cluster_name}.yaml"
  "${kind_dir}/images.sh" kind-config >"${config}"
  log "creating kind cluster ${cluster_name} from ${image}"
  "${KIND}" create cluster --name "${cluster_name}" --image "${image}" --config "${config}" --kubeconfig "${kubeconfig}" --retain
  use_cluster
  install_primary_network
  kubectl wait --for=condition=Ready nodes --all --timeout=300s
  install_multus
  install_whereabouts
  kubectl get nodes -o wide >&2
  kubectl get pods -A -o wide >&2
  echo "export KUBECONFIG=${kubeconfig}"
}

use_cluster() {
  export KUBECONFIG=${kubeconfig}
  PATH="${KUBERNETES_DIR}:${PATH}"
}

delete() {
  binaries
  "${KIND}" delete cluster --name "${cluster_name}" --kubeconfig "${kubeconfig}"
}

case ${command} in
  create) create ;;
  delete) delete ;;
  multus) binaries; use_cluster; install_multus ;;
  whereabouts) binaries; use_cluster; install_whereabouts ;;
  *) echo "usage: hack/kind/local-cluster.sh create|delete|multus|whereabouts [--name NAME]" >&2; exit 2 ;;
esac
