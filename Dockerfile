# syntax=docker/dockerfile:1
#
# The provision server as a small static image:
#
#   docker build --build-arg VERSION=1.2.3 --build-arg COMMIT=$(git rev-parse HEAD) -t provision .
#   docker run -p 8443:8443 -v provision-data:/var/lib/provision provision
#
# The same image runs every subcommand: `docker run provision worker --log …`.
# packaging/packaging_test.go builds the binary with the flags of the build
# line below and fails when the two drift apart.

FROM golang:1.26-bookworm AS build
WORKDIR /src
# Dependencies first, so that a source change does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=unknown
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" -o /out/provision ./cmd/provision
# The data directory, created here because the final image has no shell: a
# new volume takes its owner from it, so the non-root server can write.
RUN mkdir -p /out/data

# distroless/static: CA certificates, /etc/passwd with the nonroot user
# (65532), no shell, no package manager.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/provision /usr/local/bin/provision
COPY --from=build --chown=65532:65532 /out/data /var/lib/provision
# The embedded store, the generated certificate and the operator token's
# hash live here; keep it on a volume.
VOLUME ["/var/lib/provision"]
ENV PROVISION_DATA=/var/lib/provision
USER nonroot:nonroot
EXPOSE 8443
ENTRYPOINT ["/usr/local/bin/provision"]
CMD ["serve", "--listen", ":8443"]
