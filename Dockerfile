# voxgate container image.
#
#   docker build --platform linux/amd64 -t voxgate .
#   docker run --rm -p 8000:8000 -v "$PWD/model:/app/model:ro" -v voxgate-data:/app/data --env-file .env voxgate
#
# linux/amd64 only: libvosk.so comes from the npm package vosk@0.3.39, which ships it for linux-x86_64.
# See docs/deployment.md for compose, nginx, health probes and shutdown.

ARG NODE_IMAGE=node:20-bookworm-slim
# npm 11 (the version the project is developed with) honours package.json "allowScripts"; see the deps stage.
ARG NPM_VERSION=11.19.1

# ---------------------------------------------------------------------------------------------------------
# build: compile TypeScript with the dev dependencies (tsc). Nothing from this stage but dist/ is kept.
# ---------------------------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /build

# Dependencies first, so that the layer is reused while only sources change. Install scripts are not needed
# to compile (tsc loads no native code), so none run here.
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund \
 && npm cache clean --force

COPY tsconfig.json tsconfig.build.json ./
COPY src/ ./src/
COPY workers/ ./workers/
RUN npm run build \
 && test -f dist/src/main.js \
 && test -f dist/workers/vosk-worker.js

# ---------------------------------------------------------------------------------------------------------
# deps: production node_modules, with libvosk.so and the compiled better-sqlite3. Compilers stay in this stage.
# ---------------------------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS deps
ARG NPM_VERSION

# better-sqlite3 is compiled from source (python3, make, g++ from Debian; Node's headers from the image via
# npm_config_nodedir), so the build needs nothing but the Debian and npm registries; its own install script
# would otherwise try to download a prebuilt binary from GitHub first.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*

# npm 11 honours package.json "allowScripts": only better-sqlite3's install script runs. The image's own npm
# (10) would run every dependency's script, among them vosk-koffi's postinstall, which downloads a different
# libvosk (0.3.45) from GitHub to the very path our provisioning checks, so the pinned, integrity-checked
# vosk@0.3.39 library would silently not be used.
RUN npm install -g "npm@${NPM_VERSION}" \
 && npm cache clean --force

ENV npm_config_nodedir=/usr/local \
    npm_config_build_from_source=better-sqlite3

WORKDIR /app
COPY package.json package-lock.json ./
COPY scripts/provision-libvosk.mjs ./scripts/provision-libvosk.mjs

# `npm ci --omit=dev` runs our postinstall (scripts/provision-libvosk.mjs: `npm pack vosk@0.3.39` from the
# npm registry, integrity check, `tar -x`; it needs only node, npm and tar, and tar and gzip are essential
# packages in every Debian image). Then: drop build intermediates and the binaries of other platforms
# (uWebSockets.js ships one per platform and Node ABI, ~90 MB), and check that the native parts load.
RUN tar --version > /dev/null \
 && npm ci --omit=dev --no-audit --no-fund \
 && test -f node_modules/vosk-koffi/bin-linux-x64/libvosk.so \
 && rm -rf node_modules/better-sqlite3/build/Release/obj node_modules/better-sqlite3/build/Release/obj.target \
           node_modules/better-sqlite3/build/Release/.deps node_modules/better-sqlite3/build/Release/test_extension.node \
           node_modules/better-sqlite3/build/Release/sqlite3.a node_modules/better-sqlite3/deps \
 && find node_modules/uWebSockets.js/binaries -type f ! -name "uws_linux_x64_$(node -p process.versions.modules).node" -delete \
 && find node_modules/koffi/build/koffi -mindepth 1 -maxdepth 1 -type d ! -name linux_x64 -exec rm -rf {} + \
 && npm cache clean --force \
 && rm -rf /root/.npm /tmp/*

# ---------------------------------------------------------------------------------------------------------
# runtime: Node.js, node_modules, compiled code and the prompt files; no compiler, no build tools.
# ---------------------------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime

ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8000 \
    VOSK_MODEL_PATH=/app/model/vosk-model-small-cn-0.22 \
    SESSION_PERSISTENCE_DIR=/app/data

WORKDIR /app

# package.json is read at run time (version); node_modules come from the deps stage.
COPY package.json ./
COPY --from=deps /app/node_modules ./node_modules
# Compiled code: dist/src (server) and dist/workers (dist/workers/vosk-worker.js, the Vosk worker thread).
COPY --from=build /build/dist ./dist
# The LLM prompts are Markdown read at run time; dist/src/llm/prompt-builder.js looks for them in
# ../../../src/llm/prompts/, i.e. /app/src/llm/prompts/ (tsc does not copy them into dist/).
COPY src/llm/prompts/ ./src/llm/prompts/
# The demo page's static files (GET /demo), read at start-up the same way: dist/src/demo/routes.js looks in
# ../../../src/demo/static/.
COPY src/demo/static/ ./src/demo/static/

# Final checks of the image itself: libvosk present, uWebSockets.js loads natively (not its silent pure-JS
# fallback), better-sqlite3 loads, code and prompts in place. /app/data must be writable by the runtime user
# (a new named volume is initialised from this directory, ownership included); /app/model is meant to be
# mounted read-only.
RUN test -f node_modules/vosk-koffi/bin-linux-x64/libvosk.so \
 && test -f dist/src/main.js \
 && test -f dist/workers/vosk-worker.js \
 && test -f src/llm/prompts/suggestions.system.md \
 && test -f src/demo/static/index.html \
 && node -e "const D=require('better-sqlite3'); new D(':memory:').close()" \
 && node -e "const u=require('uWebSockets.js'); if (!Function.prototype.toString.call(u.App).includes('[native code]')) process.exit(1)" \
 && mkdir -p /app/model /app/data \
 && chown node:node /app/data

# The `node` user (uid 1000) comes with the official Node.js images.
USER node

VOLUME ["/app/model", "/app/data"]
EXPOSE 8000

# /livez answers 200 as soon as the server listens, and keeps answering while draining; readiness is /readyz.
# No curl in slim images: Node's fetch does the probe. A big model can take a while to load: start period.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8000)+'/livez').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]

# Node runs as PID 1 (no init): the kernel gives PID 1 no default signal actions, but voxgate installs its own
# SIGTERM/SIGINT handlers (src/main.ts), so `docker stop` starts the graceful drain; it exits 0 when done.
# A second signal exits at once (143). Give the container a stop timeout longer than SHUTDOWN_DRAIN_MS.
STOPSIGNAL SIGTERM
CMD ["node", "dist/src/main.js"]
