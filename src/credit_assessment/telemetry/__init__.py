"""What the service tells the outside: JSON logs and Prometheus metrics."""

# With several worker processes prometheus_client must see this variable before it is first
# imported, so it is named here, where importing costs nothing.
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
