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
RUN CGO_ENABLED=0 go build -trimpath -tags nokube,nosqlite -ldflags="-s -w" -o /out/shiplock ./cmd/shiplock

FROM scratch
# CA roots for sslmode=verify-full.
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/shiplock /shiplock
ENV SHIPLOCK_DIR=/migrations
USER 65532:65532
ENTRYPOINT ["/shiplock"]
CMD ["up"]
