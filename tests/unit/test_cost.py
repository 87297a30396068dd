"""The cost model: line items, scaling to the reference workload, what is excluded."""

import json

import pytest

from s3stagger import definitions
from s3stagger.domain.cost import (
    CostModelError,
    CountedWork,
    PriceTable,
    ReferenceWorkload,
    billed_ms,
    estimate_cost,
)


@pytest.fixture(scope="module")
def prices() -> PriceTable:
    return PriceTable.from_definition(definitions.read_json("prices.json"))


def work(**changes: object) -> CountedWork:
    """A reference-shaped run (50 rows per object, C = 50, L = 0.2 s) of 100 objects."""
    fields: dict[str, object] = {"objects": 100, "rows": 5000, "capacity": 50, "latency_s": 0.2}
    fields.update(changes)
    return CountedWork(**fields)  # type: ignore[arg-type]


def item(estimate, name_start: str):  # type: ignore[no-untyped-def]
    return next(i for i in estimate.items if i.name.startswith(name_start))


def test_price_table_reads_the_dated_definition(prices: PriceTable) -> None:
    assert prices.as_of
    assert prices.region == "us-east-1"
    assert prices.reference == ReferenceWorkload(
        objects=1_000_000, rows_per_object=50, capacity=50, latency_s=0.2
    )
    assert prices.lambda_per_gb_s["arm64"] < prices.lambda_per_gb_s["x86_64"]


def test_a_reference_shaped_run_is_priced_per_object_at_time_scale_one(prices: PriceTable) -> None:
    estimate = estimate_cost(
        work(
            sqs_requests={"ReceiveMessage": 30, "DeleteMessage": 100, "ChangeMessageVisibility": 170},
            s3_requests={"GetObject": 100},
            eventbridge_events=100,
            lambda_requests=100,
            lambda_billed_ms=100 * 2000,
            lambda_memory_mb=512,
            sfn_transitions=300,
        ),
        prices,
    )
    assert estimate.time_scale == pytest.approx(1.0)
    # 3 transitions per object x 1M x $0.025 / 1000
    assert item(estimate, "Step Functions Standard").usd == pytest.approx(75.0)
    # 3 SQS requests per object x 1M x $0.40 / 1M
    assert item(estimate, "SQS requests").usd == pytest.approx(1.2)
    # 2 s x 0.5 GB per object x 1M x arm64 price
    assert item(estimate, "Lambda duration").quantity == pytest.approx(1_000_000)
    assert item(estimate, "Lambda duration").usd == pytest.approx(13.3334)
    assert item(estimate, "S3 GET").usd == pytest.approx(0.4)
    assert item(estimate, "EventBridge").usd == pytest.approx(1.0)
    assert estimate.total_usd == pytest.approx(sum(i.usd for i in estimate.items))
    assert estimate.dominant(1)[0].name.startswith("Step Functions Standard")


def test_time_driven_items_scale_with_the_downstream_pace(prices: PriceTable) -> None:
    """At C = 20 an object takes 2.5 times longer than at the reference's C = 50: its Lambda
    seconds and empty receives count 0.4 times, its requests once."""
    estimate = estimate_cost(
        work(
            capacity=20,
            sqs_requests={"ReceiveMessage": 100, "ReceiveMessage.empty": 50, "DeleteMessage": 100},
            lambda_requests=100,
            lambda_billed_ms=100 * 5000,
            lambda_memory_mb=512,
        ),
        prices,
    )
    assert estimate.time_scale == pytest.approx(0.4)
    assert item(estimate, "Lambda duration").quantity == pytest.approx(0.4 * 2.5 * 1_000_000)
    assert item(estimate, "SQS empty receives").quantity == pytest.approx(0.4 * 500_000)
    assert item(estimate, "SQS requests").quantity == pytest.approx(1_500_000), (
        "empty ones are not billed twice"
    )


def test_express_is_billed_per_execution_and_rounded_gb_s(prices: PriceTable) -> None:
    estimate = estimate_cost(
        work(
            dispatcher_type="EXPRESS", sfn_transitions=900, sfn_executions=10, express_billed_ms=10 * 60_000
        ),
        prices,
    )
    names = [i.name for i in estimate.items]
    assert not any("transitions" in name for name in names), "Express is not billed per transition"
    assert item(estimate, "Step Functions Express executions").usd == pytest.approx(0.1)
    # 600 s x 64 MB over 100 objects = 0.375 GB-s per object
    assert item(estimate, "Step Functions Express duration").quantity == pytest.approx(375_000)
    assert billed_ms(101, 100) == 200
    assert billed_ms(0.2, 1) == 1


def test_the_users_upload_is_shown_but_not_in_the_total(prices: PriceTable) -> None:
    estimate = estimate_cost(work(dispatcher_type="NONE", user_s3_puts=100, log_bytes=1024**3 // 100), prices)
    assert [i.name for i in estimate.excluded] == ["S3 PUT of the upload (the user's)"]
    assert estimate.excluded[0].usd == pytest.approx(5.0)
    assert estimate.total_usd == pytest.approx(item(estimate, "CloudWatch Logs").usd)
    # 1/100 GiB over 100 objects = 100 GB per million objects at $0.50
    assert item(estimate, "CloudWatch Logs").usd == pytest.approx(50.0, rel=0.01)


def test_counters_round_trip_and_bad_counters_are_refused(prices: PriceTable) -> None:
    counted = work(sqs_requests={"SendMessage": 3}, s3_requests={"GetObject": 1})
    assert CountedWork.from_dict(json.loads(json.dumps(counted.as_dict()))) == counted
    with pytest.raises(CostModelError, match="unknown counter"):
        CountedWork.from_dict({**counted.as_dict(), "surprise": 1})
    with pytest.raises(CostModelError, match="incomplete"):
        CountedWork.from_dict({"objects": 1})
    with pytest.raises(CostModelError, match="objects"):
        work(objects=0)
    with pytest.raises(CostModelError, match="dispatcher_type"):
        work(dispatcher_type="FAST")
    with pytest.raises(CostModelError, match="architecture"):
        estimate_cost(work(lambda_architecture="sparc"), prices)
    with pytest.raises(CostModelError, match="price table"):
        PriceTable.from_definition({"as_of": "x"})


def test_idle_scheduled_starts_are_priced_per_start_of_the_reference_schedule(prices: PriceTable) -> None:
    """Locally the scheduler starts the dispatcher every second; on AWS every minute. Executions that
    invoked nothing are priced as the reference's starts (55.6 h x 60), not per object."""
    estimate = estimate_cost(
        work(sfn_transitions=330, sfn_idle_executions=10, sfn_idle_transitions=30), prices
    )
    assert prices.reference.scheduled_starts_per_million() == pytest.approx(1_000_000 * 0.2 / 3600 * 60)
    assert item(estimate, "Step Functions Standard transitions").quantity == pytest.approx(3_000_000)
    idle = item(estimate, "Step Functions scheduled starts")
    assert idle.scaling == "per scheduled start"
    assert idle.quantity == pytest.approx(3 * 1_000_000 * 0.2 / 60)
    assert idle.usd == pytest.approx(0.25)


def test_the_queue_requests_of_idle_starts_are_priced_per_start_not_per_object(prices: PriceTable) -> None:
    """A start that found the lease held made one queue call; locally there is one a second."""
    counted = {
        "ReceiveMessage": 250,
        "ReceiveMessage.empty": 50,
        "DeleteMessage": 100,
        "GetQueueAttributes": 40,
    }
    estimate = estimate_cost(
        work(
            sqs_requests=counted,
            sfn_executions=41,
            sfn_idle_executions=40,
            sqs_idle_requests=50,
            sqs_idle_empty_receives=10,
        ),
        prices,
    )
    # 390 requests - 50 empty - (50 - 10) idle ones that found something = 300: 3 per object
    assert item(estimate, "SQS requests").quantity == pytest.approx(3_000_000)
    assert item(estimate, "SQS empty receives").quantity == pytest.approx(400_000)
    idle = item(estimate, "SQS requests (idle starts)")
    assert idle.scaling == "per scheduled start"
    # 50 requests over 40 idle starts, at the reference's 3,333 starts per million objects
    assert idle.quantity == pytest.approx(50 / 40 * 1_000_000 * 0.2 / 60)
