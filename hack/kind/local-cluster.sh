#!/usr/bin/env bash
# A kind cluster from locally built images only (hack/kind/images.sh), for a
# machine that reaches no image registry. Work in progress toward
# `hack/kind/e2e.sh --build-images` (issue 11): it creates the cluster, its
# primary pod network and Multus (thick plugin); whereabouts and netservice
# are not installed yet. See "Building everything locally" in
# hack/kind/README.md.
#
#   hack/kind/local-cluster.sh create [--name NAME]   # prints `export KUBECONFIG=...` last
#   hack/kind/local-cluster.sh delete [--name NAME]
#   hack/kind/local-cluster.sh multus [--name NAME]   # (re)installs Multus on a running cluster
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
readonly repo_root
readonly kind_dir="${repo_root}/hack/kind"
cache=${NETSERVICE_CACHE:-${HOME}/.cache/netservice}
readonly run_dir="${cache}/run"

log() { printf '\n==> %s\n' "$*" >&2; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

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
  local node=node assignments
  [[ -x ${repo_root}/node_modules/.bin/node ]] && node=${repo_root}/node_modules/.bin/node
  assignments=$(cd "${repo_root}" && nice -n 15 "${node}" hack/kind/build.ts)
  eval "${assignments}"
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
    for other in "${!cidrs[@]}"; do
      [[ ${other} == "${node}" ]] && continue
      docker exec "${node}" ip route replace "${cidrs[${other}]}" via "${addresses[${other}]}"
    done
  done
}

# Multus' own thick-plugin manifest, from its Go module, with the image built
# here and the daemon's memory limit of hack/kind/e2e.sh.
install_multus() {
  local image module dir
  image=$("${kind_dir}/images.sh" multus)
  log "installing Multus (thick plugin) as ${image}"
  "${KIND}" load docker-image "${image}" --name "${cluster_name}"
  module=$(cd "${repo_root}/hack/tools/multus-thick" && go list -m -f '{{.Dir}}' gopkg.in/k8snetworkplumbingwg/multus-cni.v4)
  dir=$(mktemp -d)
  cp "${module}/deployments/multus-daemonset-thick.yml" "${dir}/"
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
  kubectl apply -k "${dir}"
  rm -rf "${dir}"
  kubectl -n kube-system rollout status daemonset/kube-multus-ds --timeout=300s
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
  *) echo "usage: hack/kind/local-cluster.sh create|delete|multus [--name NAME]" >&2; exit 2 ;;
esac
