# seatsync: the commands the README and CI use.
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)

.PHONY: build test bench demo fuzz clean check-deploy

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/seatsync ./cmd/seatsync

# The test command: CI runs exactly this.
test:
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 30m ./...

# The packaging renders and verifies: the systemd unit (pointed at the binary
# just built, since verify checks ExecStart exists), the kustomize base, an
# overlay of it with the ServiceMonitor component (kustomize wants relative
# paths there), and one with the ha component (two replicas on PostgreSQL,
# rolling updates, a PodDisruptionBudget, no volume claim).
check-deploy: build
	tmp=$$(mktemp -d) && \
	sed "s|/usr/local/bin/seatsync|$(CURDIR)/bin/seatsync|" deploy/systemd/seatsync.service > $$tmp/seatsync.service && \
	systemd-analyze verify $$tmp/seatsync.service && \
	kubectl kustomize deploy/kubernetes > $$tmp/kubernetes.yaml && \
	grep -q 'kind: Deployment' $$tmp/kubernetes.yaml && \
	base=$$(realpath --relative-to=$$tmp $(CURDIR)/deploy/kubernetes) && \
	printf 'resources: [%s]\ncomponents: [%s/components/servicemonitor]\n' $$base $$base > $$tmp/kustomization.yaml && \
	kubectl kustomize $$tmp > $$tmp/monitored.yaml && \
	grep -q 'kind: Deployment' $$tmp/monitored.yaml && grep -q 'kind: ServiceMonitor' $$tmp/monitored.yaml && \
	printf 'resources: [%s]\ncomponents: [%s/components/ha]\n' $$base $$base > $$tmp/kustomization.yaml && \
	kubectl kustomize $$tmp > $$tmp/ha.yaml && \
	grep -q 'kind: PodDisruptionBudget' $$tmp/ha.yaml && grep -q 'replicas: 2' $$tmp/ha.yaml && \
	grep -q 'type: RollingUpdate' $$tmp/ha.yaml && ! grep -q 'type: Recreate' $$tmp/ha.yaml && \
	! grep -q 'kind: PersistentVolumeClaim' $$tmp/ha.yaml && grep -q 'driver: postgres' $$tmp/ha.yaml && \
	rm -rf $$tmp && echo "deploy: ok"

# Benchmarks print their figures; they are never timing asserts in tests.
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 3x ./reconcile/ ./store/sqlite/ ./connector/csv/ ./cmd/seatsync/

# Quick start: a first sync of the example HR export into examples/demo.db.
demo: build
	./bin/seatsync sync -c examples/demo.yaml

# Run each fuzz target for a while (the seed corpora run in every `make test`).
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime 60s ./config/
	$(GO) test -run '^$$' -fuzz FuzzRead -fuzztime 60s ./connector/csv/
	$(GO) test -run '^$$' -fuzz FuzzLeavers -fuzztime 60s ./connector/csv/
	$(GO) test -run '^$$' -fuzz FuzzDecodeEntry -fuzztime 60s ./connector/ldap/

clean:
	rm -rf bin examples/demo.db examples/demo.db-wal examples/demo.db-shm
