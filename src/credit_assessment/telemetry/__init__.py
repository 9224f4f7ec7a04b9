"""What the service tells the outside: JSON logs and Prometheus metrics."""
