#!/usr/bin/env bash
# A Docker engine for the kind end-to-end run on a machine that has none
# (the project's development and CI machines). Test environment only: nothing
# here belongs to deploy/ or to a user's machine, and an engine that already
# answers is used as it is and never reconfigured.
#
#   hack/kind/docker.sh up       # install docker.io if missing, start dockerd, wait for `docker info`
#   hack/kind/docker.sh down     # stop the dockerd that `up` started (by its pid file)
#   hack/kind/docker.sh status
#
# Why a runtime wrapper: on these machines root's capability bounding set
# lacks CAP_SYS_RESOURCE, so runc refuses every container that asks for it,
# and `docker run --privileged` (what kind does for each node) asks for every
# capability. When the bounding set lacks it, `up` registers a runc wrapper as
# dockerd's default runtime that removes CAP_SYS_RESOURCE from the container's
# capability lists (the bundle's config.json for create/run, the --process
# file for exec) and then runs the real runc with the same arguments.
# See hack/kind/README.md.

# Functions in conditions are meant as tests here (SC2310).
# shellcheck disable=SC2310
set -euo pipefail

readonly WRAPPER_NAME=runc-no-sys-resource
readonly WRAPPER=/usr/local/libexec/netservice/${WRAPPER_NAME}
readonly DAEMON_JSON=/etc/docker/daemon.json
readonly CAP_SYS_RESOURCE_BIT=24

cache=${NETSERVICE_CACHE:-${HOME}/.cache/netservice}
readonly run_dir="${cache}/run"
readonly pid_file="${run_dir}/dockerd.pid"
readonly log_file="${run_dir}/dockerd.log"

log() { printf '[netservice] %s\n' "$*" >&2; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

engine_answers() { command -v docker >/dev/null && docker info >/dev/null 2>&1; }

our_pid() {
  local pid command
  [[ -s ${pid_file} ]] || return 1
  pid=$(<"${pid_file}")
  command=$(tr '\0' ' ' <"/proc/${pid}/cmdline" 2>/dev/null) || return 1
  [[ ${command} == dockerd* ]] || return 1
  echo "${pid}"
}

bounding_set_lacks_sys_resource() {
  local bounding
  bounding=$(awk '/^CapBnd:/ { print $2 }' /proc/self/status)
  (((16#${bounding} >> CAP_SYS_RESOURCE_BIT & 1) == 0))
}

install_engine() {
  command -v dockerd >/dev/null && return
  [[ ${EUID} -eq 0 ]] || fail "dockerd is missing; as root: apt-get install docker.io"
  log "installing Debian's docker.io"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io jq >&2
}

install_wrapper() {
  local runc
  runc=$(command -v runc) || fail "runc is missing (Debian's docker.io depends on it)"
  command -v jq >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq jq >&2
  mkdir -p "$(dirname "${WRAPPER}")"
  cat >"${WRAPPER}.partial" <<EOF
#!/usr/bin/env bash
# Written by netservice's hack/kind/docker.sh: this machine's capability
# bounding set lacks CAP_SYS_RESOURCE, so it is taken out of what the
# container asks for before ${runc} sees it.
set -euo pipefail
strip() { # file jq-path
  local tmp="\$1.no-sys-resource"
  jq "\$2 |= (if . == null then . else with_entries(.value |= (if . == null then . else map(select(. != \"CAP_SYS_RESOURCE\")) end)) end)" "\$1" >"\$tmp"
  mv "\$tmp" "\$1"
}
command='' bundle='' process=''
args=("\$@")
for ((i = 0; i < \${#args[@]}; i++)); do
  case \${args[i]} in
    create | run | exec) [[ -n \$command ]] || command=\${args[i]} ;;
    --bundle | -b) bundle=\${args[i + 1]:-} ;;
    --bundle=*) bundle=\${args[i]#--bundle=} ;;
    --process | -p) process=\${args[i + 1]:-} ;;
    --process=*) process=\${args[i]#--process=} ;;
  esac
done
case \$command in
  create | run) strip "\${bundle:-.}/config.json" .process.capabilities ;;
  exec) [[ -z \$process ]] || strip "\$process" .capabilities ;;
esac
exec ${runc} "\$@"
EOF
  chmod 0755 "${WRAPPER}.partial"
  mv "${WRAPPER}.partial" "${WRAPPER}"
}

register_wrapper() {
  mkdir -p "$(dirname "${DAEMON_JSON}")"
  local current='{}'
  [[ -s ${DAEMON_JSON} ]] && current=$(<"${DAEMON_JSON}")
  jq --arg name "${WRAPPER_NAME}" --arg path "${WRAPPER}" \
    '.runtimes[$name] = {path: $path} | .["default-runtime"] = $name' <<<"${current}" >"${DAEMON_JSON}.partial"
  mv "${DAEMON_JSON}.partial" "${DAEMON_JSON}"
  log "${DAEMON_JSON}: default runtime ${WRAPPER_NAME} (${WRAPPER})"
}

up() {
  if engine_answers; then
    log "a Docker engine answers already; using it as it is"
    return
  fi
  install_engine
  if bounding_set_lacks_sys_resource; then
    install_wrapper
    register_wrapper
  fi
  mkdir -p "${run_dir}"
  log "starting dockerd (log: ${log_file})"
  setsid nohup dockerd >"${log_file}" 2>&1 </dev/null &
  echo $! >"${pid_file}"
  local deadline=$((SECONDS + 90))
  until docker info >/dev/null 2>&1; do
    our_pid >/dev/null || { tail -n 30 "${log_file}" >&2; fail "dockerd exited; its log: ${log_file}"; }
    [[ ${SECONDS} -lt ${deadline} ]] || { tail -n 30 "${log_file}" >&2; fail "dockerd did not answer within 90 s; its log: ${log_file}"; }
    sleep 1
  done
  local version runtime
  version=$(docker version --format '{{.Server.Version}}')
  runtime=$(docker info --format '{{.DefaultRuntime}}')
  log "dockerd ${version} is up (pid $(<"${pid_file}")), default runtime ${runtime}"
}

down() {
  local pid
  if ! pid=$(our_pid); then
    log "no dockerd started by hack/kind/docker.sh is running"
    rm -f "${pid_file}"
    return
  fi
  log "stopping dockerd (pid ${pid})"
  kill -TERM "${pid}"
  local deadline=$((SECONDS + 60))
  while [[ -d /proc/${pid} ]]; do
    [[ ${SECONDS} -lt ${deadline} ]] || fail "dockerd (pid ${pid}) did not stop within 60 s"
    sleep 1
  done
  rm -f "${pid_file}"
}

status() {
  local pid
  if pid=$(our_pid); then
    echo "dockerd started by hack/kind/docker.sh runs (pid ${pid})"
  elif engine_answers; then
    echo "a Docker engine answers, not started by hack/kind/docker.sh"
  else
    echo "no Docker engine answers"
    return 1
  fi
}

case ${1:-} in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: hack/kind/docker.sh up|down|status" >&2; exit 2 ;;
esac
