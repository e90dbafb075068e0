# shardline in a container: `docker build -t shardline .`, then
#   docker run --rm -e DISCORD_TOKEN shardline run --intents Guilds,GuildMessages --events MESSAGE_CREATE
#   docker run --rm -p 9464:9464 -e DISCORD_TOKEN shardline run --metrics-port 9464 --host 0.0.0.0
# The entrypoint is the `shardline` CLI; the default command is `run` (or give `proxy`). Runs as the
# unprivileged `node` user. Probes: GET /healthz and /readyz on the --metrics-port / --status-port.
# See examples/compose/ for Redis, NATS and the bot together.

ARG NODE_VERSION=20

# ---- build: the package tarball, exactly what `npm pack` ships ---------------------------------------------
FROM node:${NODE_VERSION}-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
# no install scripts: the native optional addons are not needed to build (they need a compiler)
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY . .
RUN npm run build && npm pack --ignore-scripts --pack-destination /tmp && mv /tmp/shardline-*.tgz /tmp/shardline.tgz

# ---- runtime: the tarball installed globally, production dependencies only ----------------------------------
FROM node:${NODE_VERSION}-slim
# prom-client: the metrics; ioredis and the NATS client: shardline/distributed (and `shardline proxy`).
# The native optional addons (zlib-sync, zstd-napi) are left out: shardline's own inflate paths need none.
ARG EXTRA_PACKAGES="prom-client ioredis @nats-io/transport-node @nats-io/jetstream"
COPY --from=build /tmp/shardline.tgz /tmp/shardline.tgz
RUN npm install --global --omit=dev --omit=optional --no-audit --no-fund /tmp/shardline.tgz ${EXTRA_PACKAGES} \
  && rm /tmp/shardline.tgz \
  && npm cache clean --force
ENV NODE_ENV=production
USER node
WORKDIR /home/node
EXPOSE 9464 8080
ENTRYPOINT ["shardline"]
CMD ["run"]
