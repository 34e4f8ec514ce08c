# The kind node image, built locally: what kind's images/base/Dockerfile
# (sigs.k8s.io/kind v0.33.0, the module under hack/tools/kind/) makes, from
# binaries built here instead of downloaded ones, on the Debian base of
# hack/kind/base-image.sh. hack/kind/images.sh assembles the build context:
#   files/  kind's images/base/files, unchanged
#   bin/    containerd, containerd-shim-runc-v2, ctr, crictl (-> /usr/local/bin)
#   sbin/   runc (-> /usr/local/sbin)
#   kube/   kubelet, kubeadm, kubectl (-> /usr/bin, where kind's units expect them)
#   cni/    the CNI reference plugins (-> /opt/cni/bin)
# Docker 20.10's builder runs it (no BuildKit features such as COPY --chmod).
ARG BASE_IMAGE
FROM ${BASE_IMAGE}

COPY files/ /
# The packages and the systemd clean-up of kind's base image.
RUN chmod 0755 /kind /kind/bin /kind/bin/* /usr/local/bin/* \
    && DEBIAN_FRONTEND=noninteractive clean-install \
      systemd \
      conntrack iptables nftables iproute2 ethtool util-linux mount kmod \
      libseccomp2 pigz fuse-overlayfs \
      nfs-common \
      e2fsprogs \
      bash ca-certificates curl jq procps \
    && find /lib/systemd/system/sysinit.target.wants/ -name "systemd-tmpfiles-setup.service" -delete \
    && rm -f /lib/systemd/system/multi-user.target.wants/* \
    && rm -f /etc/systemd/system/*.wants/* \
    && rm -f /lib/systemd/system/local-fs.target.wants/* \
    && rm -f /lib/systemd/system/sockets.target.wants/*udev* \
    && rm -f /lib/systemd/system/sockets.target.wants/*initctl* \
    && rm -f /lib/systemd/system/basic.target.wants/* \
    && echo "ReadKMsg=no" >> /etc/systemd/journald.conf \
    && ln -sf /usr/lib/systemd/systemd /sbin/init

COPY bin/ /usr/local/bin/
COPY sbin/ /usr/local/sbin/
COPY kube/ /usr/bin/
COPY cni/ /opt/cni/bin/

ARG KUBERNETES_VERSION
ARG SANDBOX_IMAGE
# cri-base.json as kind makes it; the sandbox (pause) image is the one built
# here; /kind/version is what kind reads to configure kubeadm.
# restrict_oom_score_adj: where the machine's root lacks CAP_SYS_RESOURCE
# (hack/kind/docker.sh), the node cannot lower a process's oom_score_adj, and
# runc fails every pod sandbox (the kubelet asks -998 for it) with
# "failed to update /proc/self/oom_score_adj: Permission denied"; containerd
# then raises what the kubelet asks to its own value, as it does in rootless
# mode. Elsewhere it only changes the scores of critical pods.
RUN systemctl enable kubelet.service containerd.service undo-mount-hacks.service \
    && systemctl mask systemd-binfmt.service \
    && mkdir -p /etc/kubernetes/manifests \
    && ctr oci spec \
      | jq '.hooks.createContainer[.hooks.createContainer | length] |= . + {"path": "/kind/bin/mount-product-files.sh"}' \
      | jq 'del(.process.rlimits)' > /etc/containerd/cri-base.json \
    && sed -i "s#^\( *sandbox_image = \).*#\1\"${SANDBOX_IMAGE}\"#" /etc/containerd/config.toml \
    && grep -q "sandbox_image = \"${SANDBOX_IMAGE}\"" /etc/containerd/config.toml \
    && sed -i "s#^\( *restrict_oom_score_adj = \).*#\1true#" /etc/containerd/config.toml \
    && grep -q "restrict_oom_score_adj = true" /etc/containerd/config.toml \
    && echo "${KUBERNETES_VERSION}" > /kind/version \
    && containerd --version && runc --version && kubelet --version

ENV container=docker
STOPSIGNAL SIGRTMIN+3
ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]
