#!/usr/bin/env bash
# Builds the Dockerfile and proves the image works, on a machine with a Docker daemon (not part of `npm test`:
# a fresh machine has no Docker). Offline: the image's own simulator stands in for Discord, on the host network.
#   npm run docker:smoke            # or: bash scripts/docker-smoke.sh [image-tag]
# Checks: the image runs as a non-root user; `shardline run` reaches READY on 2 shards and prints 5 events;
# `shardline proxy --json` prints its URL and answers /healthz, /readyz and GET /api/v10/gateway/bot.
set -euo pipefail
cd "$(dirname "$0")/.."
TAG="${1:-shardline:smoke}"
SIM=17878 PROXY=17979 METRICS=19465
# DOCKER_BUILD_FLAGS: extra build flags, e.g. "--network host" where the default bridge has no route out.
# shellcheck disable=SC2086
docker build ${DOCKER_BUILD_FLAGS:-} -t "$TAG" . >/dev/null
sim="$(docker run -d --network host "$TAG" simulator --host 127.0.0.1 --port $SIM --shards 2 --max-concurrency 2 --guilds 4 --traffic 20 --token sim-token)"
proxy=""
cleanup() { docker rm -f "$sim" ${proxy:+"$proxy"} >/dev/null 2>&1 || true; }
trap cleanup EXIT
fail() { echo "docker-smoke: FAIL: $*" >&2; exit 1; }

[ "$(docker run --rm --entrypoint id "$TAG" -u)" != 0 ] || fail "the image runs as root"
sleep 2
events="$(timeout 60 docker run --rm --network host -e DISCORD_TOKEN=sim-token "$TAG" run \
  --gateway-url ws://127.0.0.1:$SIM --api-url http://127.0.0.1:$SIM/api/v10 --shards 2 \
  --intents Guilds,GuildMessages --events MESSAGE_CREATE --max-events 5 2>/dev/null | grep -c '"type":"MESSAGE_CREATE"')" || true
[ "$events" = 5 ] || fail "shardline run printed $events of 5 events"

proxy="$(docker run -d --network host -e DISCORD_TOKEN=sim-token "$TAG" proxy --port $PROXY \
  --gateway-url ws://127.0.0.1:$SIM --api-url http://127.0.0.1:$SIM/api/v10 --shards 2 --intents Guilds,GuildMessages \
  --metrics-port $METRICS --json)"
for _ in $(seq 1 60); do docker logs "$proxy" 2>/dev/null | grep -q '"url"' && break; sleep 0.5; done
docker logs "$proxy" 2>/dev/null | grep -q "\"url\":\"ws://127.0.0.1:$PROXY\"" || fail "the proxy printed no --json line"
curl -fsS http://127.0.0.1:$METRICS/healthz >/dev/null || fail "/healthz"
curl -fsS http://127.0.0.1:$METRICS/readyz >/dev/null || fail "/readyz"
curl -fsS http://127.0.0.1:$PROXY/api/v10/gateway/bot -H 'Authorization: Bot sim-token' | grep -q '"shards":2' || fail "/gateway/bot"
echo "docker-smoke: ok ($TAG: non-root, run printed 5 events, proxy ready and probed)"
