# seatsync container image: a static binary on distroless, running as nonroot.
#
#   docker build --build-arg VERSION=$(git describe --tags --always) -t seatsync .
#   docker run -v seatsync-data:/var/lib/seatsync -v $PWD/seatsync.yaml:/etc/seatsync/seatsync.yaml:ro \
#              -e SEATSYNC_API_TOKEN=... -p 8080:8080 seatsync
#
# No HEALTHCHECK: orchestrators probe /healthz and /readyz (see deploy/kubernetes).

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
# The same target, so the same flags, as `make build`: CGO_ENABLED=0, -trimpath,
# -ldflags "-s -w -X main.version=$(VERSION)".
RUN make build VERSION=${VERSION} && mkdir -p /out/state

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /src/bin/seatsync /usr/local/bin/seatsync
# The store's directory, owned by the nonroot user (65532) so a fresh volume is writable.
COPY --from=build --chown=65532:65532 /out/state /var/lib/seatsync
VOLUME ["/var/lib/seatsync"]
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/seatsync"]
CMD ["serve", "-c", "/etc/seatsync/seatsync.yaml"]
