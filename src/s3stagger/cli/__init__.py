"""The `s3stagger` command."""
