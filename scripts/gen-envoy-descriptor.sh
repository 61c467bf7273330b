#!/usr/bin/env bash
# Regenerates zone/proto/envoy.pb: the protobuf descriptor set of every Envoy type
# the zone's xDS generation emits, used by the inspect API (`_config`) to render
# Envoy's proto3 JSON. Uses envoy-types' bundled .proto files and the vendored
# protoc from the cargo registry (no network, no system protoc).
# The test xds::inspect_json checks every emitted type is in the set.
set -euo pipefail
R=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/ | head -1)
P=$R/protoc-bin-vendored-linux-x86_64-3.3.0
E=$R/envoy-types-0.7.7/proto
OUT=$(cd "$(dirname "$0")/.." && pwd)/zone/proto/envoy.pb
cd "$E/data-plane-api"
"$P/bin/protoc" -I . -I ../xds -I ../protoc-gen-validate -I ../googleapis -I ../cel-spec/proto \
  -I ../opentelemetry-proto -I ../client_model -I "$P/include" \
  --include_imports --descriptor_set_out="$OUT" \
  envoy/config/listener/v3/listener.proto envoy/config/cluster/v3/cluster.proto \
  envoy/config/endpoint/v3/endpoint.proto envoy/config/route/v3/route.proto \
  envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto \
  envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.proto \
  envoy/extensions/filters/http/router/v3/router.proto \
  envoy/extensions/filters/http/rbac/v3/rbac.proto \
  envoy/extensions/filters/network/rbac/v3/rbac.proto \
  envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector.proto \
  envoy/extensions/filters/http/fault/v3/fault.proto \
  envoy/extensions/filters/http/local_ratelimit/v3/local_rate_limit.proto \
  envoy/extensions/filters/network/local_ratelimit/v3/local_rate_limit.proto \
  envoy/extensions/access_loggers/file/v3/file.proto \
  envoy/extensions/health_check/event_sinks/file/v3/file.proto \
  envoy/extensions/access_loggers/fluentd/v3/fluentd.proto \
  envoy/extensions/retry/host/previous_hosts/v3/previous_hosts.proto \
  envoy/extensions/retry/host/omit_host_metadata/v3/omit_host_metadata_config.proto \
  envoy/extensions/retry/priority/previous_priorities/v3/previous_priorities_config.proto \
  envoy/extensions/upstreams/http/v3/http_protocol_options.proto \
  envoy/config/trace/v3/zipkin.proto envoy/config/trace/v3/datadog.proto \
  envoy/config/trace/v3/opentelemetry.proto \
  envoy/extensions/transport_sockets/tls/v3/tls.proto
echo "wrote $OUT"
