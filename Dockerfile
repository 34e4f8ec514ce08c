# syntax=docker/dockerfile:1
# One image, both programs: the DaemonSet runs `node dist/node-agent.mjs`,
# the Deployment `node dist/aggregator.mjs` (deploy/ sets the args). Each is
# its program bundled into one JavaScript file (hack/bundle.ts, esbuild):
# without the TypeScript loader and with only what the program uses of its
# dependencies it needs about 35 to 50 MB less memory than the sources run
# by Node's type stripping (docs/performance.md, Memory). The production
# dependencies come along for what the bundles load only on demand
# (@kubernetes/client-node for exec plugins and auth-providers, yaml for a
# kubeconfig file in YAML).
#
#   docker build -t ghcr.io/metaswitch/netservice:0.1.0 .
#
# For releases, pin both base images by digest (image:tag@sha256:...).
#
# Where no image registry answers, hack/kind/images.sh builds stand-ins for
# both bases on this machine and passes them as build arguments, so the kind
# run builds netservice from this same recipe:
#   BUILD_IMAGE    Node 24 and npm (runs `npm ci`)
#   RUNTIME_IMAGE  Node 24 at /nodejs/bin/node, as in distroless
ARG BUILD_IMAGE=node:24-trixie-slim
ARG RUNTIME_IMAGE=gcr.io/distroless/nodejs24-debian13:nonroot

FROM ${BUILD_IMAGE} AS dependencies
WORKDIR /app
COPY package.json package-lock.json ./
# --omit=dev leaves out the npm package `node` (the Node binary the npm
# scripts use), tap, TypeScript and the other development tools. No
# production dependency has an install script.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

# The bundles: esbuild at the version package-lock.json pins (only it of the
# development tools), then hack/bundle.ts over the sources.
FROM dependencies AS bundles
RUN version=$(node -p 'require("./package-lock.json").packages["node_modules/esbuild"].version') \
    && npm install --prefix /tmp/esbuild --no-save --no-audit --no-fund "esbuild@${version}" \
    && cp -r /tmp/esbuild/node_modules/. node_modules/ \
    && rm -rf /tmp/esbuild
COPY common ./common
COPY node-agent ./node-agent
COPY aggregator ./aggregator
COPY hack/bundle.ts ./hack/
RUN node hack/bundle.ts --outdir dist

# Distroless: Node 24 and nothing else (no shell, no package manager),
# running as the unprivileged user nonroot (65532).
FROM ${RUNTIME_IMAGE}
LABEL org.opencontainers.image.title="netservice" \
      org.opencontainers.image.description="Headless Services for pods' Multus secondary-network addresses" \
      org.opencontainers.image.source="https://github.com/metaswitch/netservice" \
      org.opencontainers.image.licenses="Apache-2.0"
WORKDIR /app
ENV NODE_ENV=production
COPY --from=dependencies /app/node_modules ./node_modules
COPY package.json ./
COPY --from=bundles /app/dist ./dist
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/nodejs/bin/node"]
