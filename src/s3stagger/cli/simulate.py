"""``s3stagger simulate``: generate sample CSV files and upload them in parallel.

Works against AWS (standard credentials) or an emulator (``--endpoint-url``, e.g. the endpoint
printed by ``s3stagger local up``). The upload itself is :func:`upload_objects`, which the demo
and the pipeline benchmark reuse.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

import botocore.exceptions
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from s3stagger.cli.aws_clients import AwsTarget, error_code
from s3stagger.cli.console import fail, stderr_console
from s3stagger.cli.sample_data import SampleObject, run_id_for_seed, sample_objects
from s3stagger.errors import S3StaggerError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MAX_WORKERS = 256


class BucketNotFoundError(S3StaggerError, LookupError):
    """The target bucket does not exist (or is not visible to these credentials)."""

    def __init__(self, bucket: str, where: str) -> None:
        super().__init__(
            f"bucket {bucket!r} does not exist at {where}: create it first, or pass the name of an "
            "existing bucket with --bucket (local mode: `s3stagger local up` prints it)"
        )
        self.bucket = bucket


class BucketAccessDeniedError(S3StaggerError, PermissionError):
    """The credentials may not use the target bucket."""

    def __init__(self, bucket: str, where: str) -> None:
        super().__init__(
            f"access to bucket {bucket!r} at {where} is denied: check the credentials and that they "
            "allow s3:ListBucket and s3:PutObject on it"
        )
        self.bucket = bucket


@dataclass(frozen=True)
class UploadedObject:
    """One object that was uploaded, and when (``time.time()`` just after the PUT returned)."""

    key: str
    rows: int
    uploaded_at: float


@dataclass(frozen=True)
class UploadSummary:
    """What an upload run did."""

    bucket: str
    uploaded: tuple[UploadedObject, ...]
    elapsed_s: float

    @property
    def objects(self) -> int:
        """Number of objects uploaded."""
        return len(self.uploaded)

    @property
    def rows(self) -> int:
        """Number of data rows uploaded."""
        return sum(item.rows for item in self.uploaded)


def check_bucket(s3: S3Client, bucket: str, where: str) -> None:
    """Raise a clear error when ``bucket`` does not exist or may not be used."""
    try:
        s3.head_bucket(Bucket=bucket)
    except botocore.exceptions.ClientError as error:
        code = error_code(error)
        if code in ("404", "NoSuchBucket", "NotFound"):
            raise BucketNotFoundError(bucket, where) from None
        if code in ("403", "AccessDenied", "Forbidden"):
            raise BucketAccessDeniedError(bucket, where) from None
        raise


def upload_objects(
    s3: S3Client,
    bucket: str,
    objects: Iterable[SampleObject],
    workers: int,
    on_uploaded: Callable[[UploadedObject], None] | None = None,
) -> UploadSummary:
    """PUT every object into ``bucket`` with ``workers`` threads; the first failure is raised.

    ``on_uploaded`` is called (from the worker threads) after each successful PUT.
    """
    if not 1 <= workers <= MAX_WORKERS:
        raise ValueError(f"workers must be within 1..{MAX_WORKERS}, got {workers}")
    lock = threading.Lock()
    uploaded: list[UploadedObject] = []

    def put(item: SampleObject) -> None:
        s3.put_object(Bucket=bucket, Key=item.key, Body=item.body, ContentType="text/csv")
        record = UploadedObject(key=item.key, rows=item.rows, uploaded_at=time.time())
        with lock:
            uploaded.append(record)
        if on_uploaded is not None:
            on_uploaded(record)

    # Bounded submission: at most 2 x workers objects are generated ahead of the uploads.
    slots = threading.BoundedSemaphore(2 * workers)
    failures: list[BaseException] = []

    def release(future: Future[None]) -> None:
        slots.release()
        error = future.exception()
        if error is not None:
            with lock:
                failures.append(error)

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="s3stagger-upload") as pool:
        for item in objects:
            slots.acquire()
            with lock:
                if failures:
                    slots.release()
                    break
            pool.submit(put, item).add_done_callback(release)
    if failures:
        raise failures[0]
    return UploadSummary(bucket=bucket, uploaded=tuple(uploaded), elapsed_s=time.monotonic() - started)


def simulate(
    *,
    bucket: Annotated[str, typer.Option(help="Bucket to upload to (must exist).")],
    files: Annotated[int, typer.Option(min=1, max=1_000_000, help="Number of CSV files.")] = 10,
    rows: Annotated[int, typer.Option(min=0, max=10_000_000, help="Data rows per file.")] = 50,
    workers: Annotated[int, typer.Option(min=1, max=MAX_WORKERS, help="Parallel uploads.")] = 10,
    endpoint_url: Annotated[
        str | None,
        typer.Option(help="Emulator endpoint (e.g. from `s3stagger local up`); omit for AWS."),
    ] = None,
    prefix: Annotated[
        str,
        typer.Option(help="Key prefix, i.e. the route: 'normal/' or 'high/'; other keys go unrouted."),
    ] = "normal/",
    seed: Annotated[
        int | None, typer.Option(help="Random seed of the generated data (default: random, printed).")
    ] = None,
    region: Annotated[str | None, typer.Option(help="AWS region (default: from the environment).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as one JSON object.")] = False,
) -> None:
    """Generate CSV files and upload them to S3 in parallel."""
    if not bucket.strip():
        fail("--bucket must name an existing bucket", code=2)
    run_seed = seed if seed is not None else secrets.randbelow(2**31)
    target = AwsTarget(endpoint_url=endpoint_url, region=region, max_pool_connections=max(workers, 10))
    err = stderr_console()
    try:
        s3 = target.s3()
        check_bucket(s3, bucket, target.describe())
        with Progress(
            TextColumn("uploading"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            disable=as_json,
            transient=True,
        ) as progress:
            task = progress.add_task("upload", total=files)
            summary = upload_objects(
                s3,
                bucket,
                sample_objects(files, rows, run_seed, prefix=prefix),
                workers,
                on_uploaded=lambda _: progress.advance(task),
            )
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
        fail(f"upload to {target.describe()} failed: {error}")
    result = {
        "bucket": bucket,
        "prefix": prefix,
        "run_id": run_id_for_seed(run_seed),
        "seed": run_seed,
        "objects": summary.objects,
        "rows": summary.rows,
        "elapsed_s": round(summary.elapsed_s, 3),
        "objects_per_s": round(summary.objects / summary.elapsed_s, 2) if summary.elapsed_s > 0 else None,
    }
    if as_json:
        typer.echo(json.dumps(result))
        return
    typer.echo(
        f"uploaded {summary.objects} objects ({summary.rows} rows) to s3://{bucket}/{prefix}"
        f"{result['run_id']}/ in {summary.elapsed_s:.2f} s with {workers} workers (seed {run_seed})"
    )
