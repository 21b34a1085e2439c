"""What operators watch: Prometheus metrics (`metrics`) and OpenTelemetry spans (`tracing`).

Both are optional: without `prometheus-client` every metric call does nothing, without
`opentelemetry-api` every span is a plain context. They sit below every other layer and take
plain values, so any layer may report without knowing the others' types."""
