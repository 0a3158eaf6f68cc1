# SAHOOL Billing Core: build with the Rust toolchain, run on a slim Debian as a non-root user.
#   docker build -t billing-core .
#   docker run -p 8089:8089 -e DATABASE_URL=postgres://... -e JWT_SECRET=... billing-core
# The image contains no PostgreSQL: DATABASE_URL is required (ENVIRONMENT=production also
# requires a JWT_SECRET of 32+ characters). Optional: NATS_URL (outbox relay), STRIPE_* and
# THARWATT_* (gateways), BILLING_RUN_HOUR / SCHEDULER_ENABLED (daily jobs); see .env.example.

FROM rust:1.89-slim-bookworm AS builder
WORKDIR /app

# Dependencies first, built against placeholder sources: this layer is reused until
# Cargo.toml or Cargo.lock change, so editing src/ only recompiles the crate itself.
COPY Cargo.toml Cargo.lock ./
RUN mkdir src \
 && echo 'fn main() {}' > src/main.rs \
 && touch src/lib.rs \
 && cargo build --release --locked \
 && rm -rf src

# The migrations are compiled into the binary (sqlx::migrate!) and also shipped in the image;
# build.rs makes cargo rebuild when they change.
# The query macros read the committed query metadata in .sqlx/: no database at build time.
ENV SQLX_OFFLINE=true
COPY build.rs ./
COPY .sqlx ./.sqlx
COPY migrations ./migrations
COPY src ./src
# COPY keeps the files' old timestamps; touching the crate roots makes cargo rebuild them
# instead of trusting the placeholder build.
RUN touch src/main.rs src/lib.rs \
 && cargo build --release --locked \
 && strip target/release/billing-core

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin billing
WORKDIR /app
COPY --from=builder /app/target/release/billing-core /usr/local/bin/billing-core
# For `sqlx migrate run --source /app/migrations` from this image; the binary needs no files.
COPY --from=builder /app/migrations ./migrations
USER billing:billing
ENV PORT=8089 \
    ENVIRONMENT=production \
    LOG_FORMAT=json
EXPOSE 8089
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
  CMD curl -fsS "http://127.0.0.1:${PORT}/healthz" > /dev/null || exit 1
ENTRYPOINT ["billing-core"]
CMD ["serve"]
