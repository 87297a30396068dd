"""s3stagger: staggered, concurrency-controlled processing of S3 objects on AWS."""

__version__ = "0.1.0"
