# The Commons image: one static binary (musl, jemalloc, bundled SQLite, rustls: no OpenSSL, no
# libc at run time) on an empty base, run as a non-root user. The chart runs it as `commons run`
# with every setting from its environment (COMMONS_*; see charts/commons and `commons run --help`).
#
#   docker build -t registry.example.gov.uk/commons/commons:0.1.0 .
#
# Stage 1: GOV.UK Frontend's compiled files for the portal, from npm at the locked version (the
# browser-test packages are development dependencies, left out).
FROM docker.io/library/node:20-bookworm-slim AS frontend
WORKDIR /frontend
COPY e2e/portal/package.json e2e/portal/package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

# Stage 2: build. The Rust version is the one CI builds with.
FROM docker.io/library/rust:1.95-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/* \
 && rustup target add x86_64-unknown-linux-musl
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY .cargo .cargo
COPY crds crds
COPY operator operator
COPY api api
COPY e2e e2e
RUN cargo build --locked --profile dist --target x86_64-unknown-linux-musl -p commons-operator --bin commons \
 && install -D -m 0755 target/x86_64-unknown-linux-musl/dist/commons /out/commons \
 && mkdir -p /out/var/lib/commons /out/tmp

# Stage 3: nothing but the binary, CA certificates (for the OIDC issuer and PostgreSQL over TLS),
# the portal's GOV.UK Frontend files (where --portal-assets looks by default), and the two
# writable directories the chart mounts over (the ledger, temporary files).
FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build --chown=65532:65532 /out/ /
COPY --from=frontend /frontend/node_modules/govuk-frontend/dist/govuk /usr/share/commons/govuk-frontend
USER 65532:65532
EXPOSE 8080 8443
ENTRYPOINT ["/commons"]
CMD ["run"]
