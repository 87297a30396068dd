"""Examples shipped with the package: a request hook (``s3stagger.examples.request_hook``)."""
