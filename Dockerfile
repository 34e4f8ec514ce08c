# syntax=docker/dockerfile:1
# One image, both programs: the DaemonSet runs `node node-agent/main.ts`, the
# Deployment `node aggregator/main.ts` (deploy/ sets the args). Node 24 runs
# the TypeScript sources directly (type stripping), so there is no build step:
# the first stage only installs the production dependencies.
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
COPY common ./common
COPY node-agent ./node-agent
COPY aggregator ./aggregator
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/nodejs/bin/node"]
