# shiplock's release image: the static binary on an empty base, non-root.
# A migration image is this plus the migrations:
#   FROM <registry>/shiplock:<version>
#   COPY migrations /migrations
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# -tags nokube,nosqlite: pods need neither the Kubernetes client nor the
# embedded SQLite engine (see README): a third of the size and memory.
RUN CGO_ENABLED=0 go build -trimpath -buildvcs=false -tags nokube,nosqlite -ldflags="-s -w" -o /out/shiplock ./cmd/shiplock

# The same image as "go run ./cmd/shiplock-image" builds (a test compares
# them): keep the two in step.
FROM scratch
# CA roots for sslmode=verify-full.
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
# On the default PATH, which the image also sets: the rendered manifests run
# the bare command "shiplock".
COPY --from=build /out/shiplock /usr/local/bin/shiplock
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
ENV SHIPLOCK_DIR=/migrations
# Numeric, so that runAsNonRoot can verify it; any other UID works too.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/shiplock"]
CMD ["up"]
