# syntax=docker/dockerfile:1
# One image, both programs: the DaemonSet runs `node node-agent/main.ts`, the
# Deployment `node aggregator/main.ts` (deploy/ sets the args). Node 24 runs
# the TypeScript sources directly (type stripping), so there is no build step:
# the first stage only installs the production dependencies.
#
#   docker build -t ghcr.io/metaswitch/netservice:0.1.0 .
#
# For releases, pin both base images by digest (FROM image:tag@sha256:...).

FROM node:24-trixie-slim AS dependencies
WORKDIR /app
COPY package.json package-lock.json ./
# --omit=dev leaves out the npm package `node` (the Node binary the npm
# scripts use), tap, TypeScript and the other development tools. No
# production dependency has an install script.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

# Distroless: Node 24 and nothing else (no shell, no package manager),
# running as the unprivileged user nonroot (65532).
FROM gcr.io/distroless/nodejs24-debian13:nonroot
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
