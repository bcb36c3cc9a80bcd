# The mcgravity proxy as a container image.
#
#   docker build -t mcgravity .
#   docker run --rm -p 8080:8080 -v "$PWD/proxy.yaml:/etc/mcgravity/proxy.yaml:ro" mcgravity
#
# It runs `mcgravity --config /etc/mcgravity/proxy.yaml` as the unprivileged `node` user. The admin
# listener (health, metrics, status page) stays on 127.0.0.1:9090 unless the file says otherwise
# (global.metrics_address: 0.0.0.0 to reach it from outside the container, as in
# deploy/kubernetes.yaml). `docker kill -s HUP` reloads the file; `docker stop` drains.

FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsup.config.ts ./
COPY src ./src
COPY schema ./schema
RUN npm run build

FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    MCGRAVITY_CONFIG=/etc/mcgravity/proxy.yaml
WORKDIR /app
COPY package.json package-lock.json ./
# Runtime dependencies only, and ioredis for rate limits kept in Redis (an optional peer).
RUN npm ci --omit=dev --no-audit --no-fund \
 && npm install --no-save --no-audit --no-fund ioredis@6 \
 && npm cache clean --force
COPY --from=build /src/dist ./dist
COPY --from=build /src/schema ./schema
COPY examples/proxy.yaml /etc/mcgravity/proxy.yaml
USER node
EXPOSE 8080 9090
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9090/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "/app/dist/cli.js"]
