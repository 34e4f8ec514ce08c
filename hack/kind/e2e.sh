#!/usr/bin/env bash
# End to end on a real cluster: kind (1 control plane, 2 workers) with Multus
# (thick plugin), the CNI reference plugins and whereabouts; netservice built
# into an image and installed from deploy/; the original samples; then a real
# DNS check (a pod on the core network resolves the NetService's name through
# CoreDNS and pings every address it gets), the shared end-to-end test file
# and the tests of test/kind/ (networking across nodes, faults of real parts);
# in the middle, the Helm chart (deploy/helm/netservice) replaces deploy/'s
# install and is upgraded. See hack/kind/README.md.
#
#   hack/kind/e2e.sh [--keep] [--name NAME] [--build-images]
#
# By default it takes public images and release downloads and needs docker
# (with buildx), kind, kubectl, helm, curl, tar, sha256sum (or shasum) and npm.
# With --build-images (npm run test:kind) it needs no registry and no
# download site: Docker, kind and every image are built on this machine
# (hack/kind/local-cluster.sh). The cluster is deleted on exit unless --keep
# is given.
set -euo pipefail

readonly MULTUS_VERSION=v4.2.4
readonly CNI_PLUGINS_VERSION=v1.10.0
readonly WHEREABOUTS_VERSION=v0.9.2
readonly IMAGE=ghcr.io/metaswitch/netservice:kind-e2e
readonly SYSTEM_NAMESPACE=netservice-system
readonly RELEASE=netservice
# Pod-bound tokens carry the node name from Kubernetes 1.30 on (beta; GA in
# 1.32), and the admission policy in deploy/ needs it.
readonly MIN_KUBERNETES_MINOR=30

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
readonly repo_root
readonly kind_dir="${repo_root}/hack/kind"
# shellcheck source=hack/kind/lib.sh
source "${kind_dir}/lib.sh"

cluster_name=${KIND_CLUSTER_NAME:-netservice-e2e}
keep=false
build_images=false

usage() {
  cat <<EOF
Usage: hack/kind/e2e.sh [--keep] [--name NAME] [--build-images]

  --keep          leave the cluster (and its kubeconfig) in place at the end
  --name NAME     kind cluster name (default: \$KIND_CLUSTER_NAME, else netservice-e2e)
  --build-images  reach no registry: build Docker's setup, kind and every image here

Environment: KIND_NODE_IMAGE (kindest/node image; default: the kind release's own).
EOF
}

while [[ $# -gt 0 ]]; do
  case $1 in
    --keep) keep=true ;;
    --name)
      [[ $# -ge 2 ]] || { usage >&2; exit 2; }
      cluster_name=$2
      shift
      ;;
    --build-images) build_images=true ;;
    -h | --help) usage; exit 0 ;;
    *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

if [[ ${build_images} == true ]]; then
  for tool in go npm; do
    command -v "${tool}" >/dev/null || fail "${tool} is required (see hack/kind/README.md)"
  done
else
  for tool in docker kind kubectl helm curl tar npm; do
    command -v "${tool}" >/dev/null || fail "${tool} is required (see hack/kind/README.md)"
  done
  if command -v sha256sum >/dev/null; then
    sha256_check() { sha256sum -c "$1"; }
  elif command -v shasum >/dev/null; then
    sha256_check() { shasum -a 256 -c "$1"; }
  else
    fail "sha256sum or shasum is required"
  fi
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/netservice-kind.XXXXXX")
export KUBECONFIG="${work}/kubeconfig"
cluster_created=false
# The kind and helm binaries: those on PATH, or with --build-images those built here.
kind_command=kind
helm_command=helm
# With --build-images, set from hack/kind/build.ts's output (its other paths are not used here).
KIND='' KUBERNETES_DIR='' HELM=''

diagnose() {
  # The run can fail while the cluster is made: before kind made it (an image) there is no API
  # server to ask; after (Multus, whereabouts) kind still has its kubeconfig.
  if [[ ! -s ${KUBECONFIG} ]] &&
    ! "${kind_command}" get kubeconfig --name "${cluster_name}" >"${KUBECONFIG}" 2>/dev/null; then
    log "no diagnostics: kind made no cluster ${cluster_name}"
    return
  fi
  log "diagnostics"
  kubectl get nodes -o wide || true
  kubectl get pods -A -o wide || true
  kubectl -n "${SYSTEM_NAMESPACE}" describe pods || true
  kubectl -n "${SYSTEM_NAMESPACE}" logs -l app.kubernetes.io/part-of=netservice --all-containers --prefix --tail=100 || true
  "${helm_command}" --namespace "${SYSTEM_NAMESPACE}" history "${RELEASE}" 2>/dev/null || true
  kubectl get netservices,netservicenodereports -A -o wide || true
  kubectl get events -A --sort-by=.lastTimestamp | tail -50 || true
}

cleanup() {
  local status=$?
  trap - EXIT
  if [[ ${status} -ne 0 && ${cluster_created} == true ]]; then diagnose; fi
  if [[ ${keep} == true && ${cluster_created} == true ]]; then
    log "kept cluster ${cluster_name}: export KUBECONFIG=${KUBECONFIG}; delete it with: kind delete cluster --name ${cluster_name}"
  else
    if [[ ${cluster_created} == true && ${status} -ne 0 ]]; then
      log "deleting cluster ${cluster_name}"
      "${kind_command}" delete cluster --name "${cluster_name}" || true
    elif [[ ${cluster_created} == true ]]; then
      # Quietly after a pass, so the run's last lines stay tap's summary.
      "${kind_command}" delete cluster --name "${cluster_name}" >/dev/null 2>&1 ||
        log "could not delete kind cluster ${cluster_name}: kind delete cluster --name ${cluster_name}"
    fi
    rm -rf "${work}"
  fi
  exit "${status}"
}
trap cleanup EXIT

# Fetches a URL into a file, failing on HTTP errors.
fetch() {
  curl --fail --silent --show-error --location --retry 3 --output "$2" "$1"
}

create_cluster() {
  log "creating kind cluster ${cluster_name}"
  if kind get clusters | grep -qx "${cluster_name}"; then
    fail "a kind cluster named ${cluster_name} exists already; delete it or pass --name"
  fi
  local image_args=()
  if [[ -n ${KIND_NODE_IMAGE:-} ]]; then image_args=(--image "${KIND_NODE_IMAGE}"); fi
  cluster_created=true
  # ${a[@]+...}: bash 3.2 (macOS) treats an empty array as unset under set -u.
  kind create cluster --name "${cluster_name}" --config "${kind_dir}/kind-config.yaml" \
    --kubeconfig "${KUBECONFIG}" --wait 180s ${image_args[@]+"${image_args[@]}"}

  local version minor
  version=$(kubectl get --raw /version)
  minor=$(sed -n 's/.*"minor": *"\([0-9]*\).*/\1/p' <<<"${version}")
  [[ -n ${minor} && ${minor} -ge ${MIN_KUBERNETES_MINOR} ]] ||
    fail "Kubernetes 1.${MIN_KUBERNETES_MINOR} or newer is needed (node name in pod-bound tokens); the cluster runs: ${version}"
}

install_cni_plugins() {
  log "installing the CNI reference plugins ${CNI_PLUGINS_VERSION}"
  local node machine arch archive
  node=$(kind get nodes --name "${cluster_name}" | head -n 1)
  machine=$(docker exec "${node}" uname -m)
  case ${machine} in
    x86_64) arch=amd64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *) fail "no CNI plugins for node architecture ${machine}" ;;
  esac
  archive="cni-plugins-linux-${arch}-${CNI_PLUGINS_VERSION}.tgz"
  local base="https://github.com/containernetworking/plugins/releases/download/${CNI_PLUGINS_VERSION}"
  fetch "${base}/${archive}" "${work}/${archive}"
  fetch "${base}/${archive}.sha256" "${work}/${archive}.sha256"
  (cd "${work}" && sha256_check "${archive}.sha256")
  # kind's own plugins (kindnet's ptp, host-local, ...) stay as they are.
  for node in $(kind get nodes --name "${cluster_name}"); do
    docker cp "${work}/${archive}" "${node}:/tmp/cni-plugins.tgz"
    docker exec "${node}" tar -xzf /tmp/cni-plugins.tgz -C /opt/cni/bin --skip-old-files
    docker exec "${node}" rm /tmp/cni-plugins.tgz
  done
}

install_multus() {
  local dir="${work}/multus"
  mkdir -p "${dir}"
  fetch "https://raw.githubusercontent.com/k8snetworkplumbingwg/multus-cni/${MULTUS_VERSION}/deployments/multus-daemonset-thick.yml" \
    "${dir}/multus-daemonset-thick.yml"
  install_multus_from "${dir}" "ghcr.io/k8snetworkplumbingwg/multus-cni:${MULTUS_VERSION}-thick"
}

install_whereabouts() {
  local dir="${work}/whereabouts" file
  local base="https://raw.githubusercontent.com/k8snetworkplumbingwg/whereabouts/${WHEREABOUTS_VERSION}/doc/crds"
  mkdir -p "${dir}"
  for file in "${WHEREABOUTS_FILES[@]}"; do fetch "${base}/${file}" "${dir}/${file}"; done
  install_whereabouts_from "${dir}" "ghcr.io/k8snetworkplumbingwg/whereabouts:${WHEREABOUTS_VERSION}"
}

# The cluster, Multus and whereabouts from images built here (local-cluster.sh).
create_local_cluster() {
  # The binaries local-cluster.sh uses: kind, and kubectl of the same Kubernetes version.
  load_kind_binaries
  kind_command=${KIND}
  helm_command=${HELM}
  PATH="${KUBERNETES_DIR}:${PATH}"
  "${kind_dir}/docker.sh" up
  if "${kind_command}" get clusters | grep -qx "${cluster_name}"; then
    fail "a kind cluster named ${cluster_name} exists already; delete it (hack/kind/local-cluster.sh delete --name ${cluster_name}) or pass --name"
  fi
  log "creating kind cluster ${cluster_name} from images built here"
  cluster_created=true
  local exports
  exports=$("${kind_dir}/local-cluster.sh" create --name "${cluster_name}")
  KUBECONFIG=$(sed -n 's/^export KUBECONFIG=//p' <<<"${exports}")
  [[ -s ${KUBECONFIG} ]] || fail "local-cluster.sh printed no kubeconfig: ${exports}"
  export KUBECONFIG
  # The samples' images and the DNS client's, as local stand-ins.
  NETSERVICE_E2E_IMAGES=$("${kind_dir}/images.sh" workloads)
  export NETSERVICE_E2E_IMAGES
  local pair
  for pair in ${NETSERVICE_E2E_IMAGES}; do "${kind_command}" load docker-image "${pair#*=}" --name "${cluster_name}"; done
}

install_netservice() {
  log "building ${IMAGE} and loading it into the nodes"
  if [[ ${build_images} == true ]]; then
    # The same Dockerfile, on Node 24 base images built here.
    "${kind_dir}/images.sh" netservice "${IMAGE}"
  else
    # No attestations: kind's import (ctr) fails on an image index whose
    # attestation manifest docker save leaves out (kubernetes-sigs/kind#3795).
    docker buildx build --load --provenance=false --sbom=false --tag "${IMAGE}" "${repo_root}"
  fi
  "${kind_command}" load docker-image "${IMAGE}" --name "${cluster_name}"

  log "installing deploy/ (image ${IMAGE})"
  kubectl apply --server-side -k "${kind_dir}/overlay"
  kubectl -n "${SYSTEM_NAMESPACE}" rollout status daemonset/netservice-agent --timeout=300s
  kubectl -n "${SYSTEM_NAMESPACE}" rollout status deployment/netservice-aggregator --timeout=300s
  kubectl get pods --all-namespaces -o wide >&2
}

apply_samples() {
  log "applying the networks and the samples"
  kubectl apply -f "${kind_dir}/networks.yaml"
  with_local_images "${repo_root}"/hack/demo/samples/*.yaml | kubectl apply -f -
  kubectl -n default rollout status deployment/utils --timeout=600s
}

# The ready IPv4 addresses in the EndpointSlices of a NetService's Service,
# one a line, sorted: what an A query for its name should return.
published_addresses() {
  kubectl -n default get endpointslices -l "kubernetes.io/service-name=$1" \
    -o jsonpath='{range .items[?(@.addressType=="IPv4")].endpoints[?(@.conditions.ready==true)]}{.addresses[0]}{"\n"}{end}' |
    sort -u
}

wait_for_endpoints() {
  local name=$1 want=$2 count deadline=$((SECONDS + 180))
  log "waiting for ${want} ready IPv4 endpoints of NetService ${name}"
  while :; do
    count=$(published_addresses "${name}" | awk 'NF { n++ } END { print n + 0 }')
    [[ ${count} -eq ${want} ]] && break
    [[ ${SECONDS} -lt ${deadline} ]] || fail "NetService ${name} has ${count} ready IPv4 endpoints, not ${want}"
    sleep 2
  done
  published_addresses "${name}" >&2
}

# The A records of a name as the client pod's resolver (CoreDNS) returns them, sorted.
resolve() {
  { kubectl -n default exec netservice-dns-client -- nslookup -type=a "$1" 2>/dev/null || true; } |
    awk '/^Name:/ { answer = 1 } answer && /^Address:/ { print $2 }' | sort -u
}

dns_check() {
  local name=corens fqdn=corens.default.svc.cluster.local. expected resolved address deadline=$((SECONDS + 120))
  log "DNS check: ${fqdn} from a pod on the core network"
  with_local_images "${kind_dir}/dns-client.yaml" | kubectl apply -f -
  kubectl -n default wait --for=condition=Ready pod/netservice-dns-client --timeout=300s
  expected=$(published_addresses "${name}")
  while :; do
    resolved=$(resolve "${fqdn}")
    [[ ${resolved} == "${expected}" ]] && break
    [[ ${SECONDS} -lt ${deadline} ]] ||
      fail "${fqdn} resolves to [${resolved//$'\n'/ }], the EndpointSlices hold [${expected//$'\n'/ }]"
    sleep 2
  done
  for address in ${resolved}; do
    [[ ${address} == 10.10.* ]] || fail "${fqdn} resolved to ${address}, outside the core network 10.10.0.0/16"
    kubectl -n default exec netservice-dns-client -- ping -c 3 -W 2 "${address}" >/dev/null ||
      fail "no answer from ${address} over the core network"
    echo "${fqdn} -> ${address}: reachable" >&2
  done
  kubectl -n default delete pod netservice-dns-client --wait=false
}

# deploy/'s install replaced by the chart's, as deploy/helm/netservice/README.md
# tells an operator to: every object of deploy/ but the CRDs (and with them
# the NetServices) and the namespace (the reports and heartbeats) is deleted,
# the old pods with them, then helm install adopts those two
# (--take-ownership) and makes the rest. The NetServices must be the same
# objects afterwards, and corens as published as before.
install_chart() {
  local chart="${repo_root}/deploy/helm/netservice" before after
  log "replacing deploy/'s install by the Helm chart (deploy/helm/netservice, image ${IMAGE})"
  before=$(netservice_uids)
  kubectl -n "${SYSTEM_NAMESPACE}" delete --cascade=foreground -l app.kubernetes.io/part-of=netservice \
    daemonset,deployment,poddisruptionbudget,service,resourcequota,serviceaccount,role,rolebinding
  kubectl delete -l app.kubernetes.io/part-of=netservice \
    clusterrole,clusterrolebinding,validatingadmissionpolicy,validatingadmissionpolicybinding
  # Never pull: the image was loaded into the nodes, and no registry answers here.
  "${helm_command}" install "${RELEASE}" "${chart}" --namespace "${SYSTEM_NAMESPACE}" --take-ownership \
    --set image.repository="${IMAGE%:*}" --set image.tag="${IMAGE##*:}" --set image.pullPolicy=Never \
    --wait --timeout 5m
  kubectl -n "${SYSTEM_NAMESPACE}" rollout status daemonset/netservice-agent --timeout=300s
  kubectl -n "${SYSTEM_NAMESPACE}" rollout status deployment/netservice-aggregator --timeout=300s
  after=$(netservice_uids)
  [[ ${after} == "${before}" ]] ||
    fail "the NetServices are not those of before the chart: [${before//$'\n'/ }] then [${after//$'\n'/ }]"
  echo "NetServices kept: ${after//$'\n'/ }" >&2
  wait_for_endpoints corens 3
}

# namespace/name=uid of every NetService, one a line, sorted.
netservice_uids() {
  kubectl get netservices --all-namespaces \
    -o jsonpath='{range .items[*]}{.metadata.namespace}/{.metadata.name}={.metadata.uid}{"\n"}{end}' | sort
}

# The test files given, one at a time (they share the cluster and its
# samples). The run's last lines are tap's summary; a failed test fails the
# script.
run_tap() {
  NETSERVICE_E2E_KUBECONFIG="${KUBECONFIG}" NETSERVICE_KIND_CLUSTER="${cluster_name}" NETSERVICE_HELM="${helm_command}" \
    npx tap --jobs=1 --timeout=900 "$@"
}

# The end-to-end file three times: on deploy/'s install (with the networking
# tests), on the chart's (then test/kind/helm.test.ts upgrades it), and after
# the upgrade, with the faults last (a worker is stopped and started).
run_e2e_tests() {
  cd "${repo_root}"
  [[ -x node_modules/.bin/tap ]] || npm ci
  log "running test/e2e/netservice.e2e.test.ts and test/kind/cluster-network.test.ts: netservice from deploy/"
  run_tap test/e2e/netservice.e2e.test.ts test/kind/cluster-network.test.ts
  install_chart
  log "running test/e2e/netservice.e2e.test.ts and test/kind/helm.test.ts: netservice from the chart, then helm upgrade"
  run_tap test/e2e/netservice.e2e.test.ts test/kind/helm.test.ts
  log "running test/e2e/netservice.e2e.test.ts and test/kind/faults.test.ts: netservice after the upgrade"
  run_tap test/e2e/netservice.e2e.test.ts test/kind/faults.test.ts
}

main() {
  if [[ ${build_images} == true ]]; then
    create_local_cluster
  else
    create_cluster
    install_cni_plugins
    install_multus
    install_whereabouts
  fi
  install_netservice
  apply_samples
  wait_for_endpoints corens 3
  wait_for_endpoints accessns 3
  dns_check
  run_e2e_tests
}

main
