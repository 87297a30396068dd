"""``s3stagger perf-test``: scenarios x dispatchers on the local pipeline, with plots and a report."""
