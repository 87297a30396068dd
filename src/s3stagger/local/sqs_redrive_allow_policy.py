"""Stand-in for what moto's SQS leaves out: reading back a queue's ``RedriveAllowPolicy``.

``SetQueueAttributes`` with ``RedriveAllowPolicy`` (which a DLQ uses to name the queues that may
move messages into it) is accepted and stored by moto 5.2.5, but ``GetQueueAttributes`` neither
returns it nor accepts its name (``Queue.BASE_ATTRIBUTES`` does not list it). The AWS provider's
``aws_sqs_queue_redrive_allow_policy`` sets the attribute, then waits until it reads the same policy
back, so against moto it waits without end. :func:`install` adds the attribute to what a queue
reports, as AWS does: the stored value when set, nothing otherwise.
"""

from __future__ import annotations

from moto.sqs.models import Queue

ATTRIBUTE = "RedriveAllowPolicy"
_STORED_AS = "redrive_allow_policy"  # moto stores each set attribute under its snake_case name


def install() -> None:
    """Report ``RedriveAllowPolicy`` from ``GetQueueAttributes`` (idempotent)."""
    if ATTRIBUTE not in Queue.BASE_ATTRIBUTES:
        Queue.BASE_ATTRIBUTES.append(ATTRIBUTE)
        # a queue on which it was never set has none: moto drops attributes whose value is None
        setattr(Queue, _STORED_AS, None)


def uninstall() -> None:
    if ATTRIBUTE in Queue.BASE_ATTRIBUTES:
        Queue.BASE_ATTRIBUTES.remove(ATTRIBUTE)
        delattr(Queue, _STORED_AS)


def installed() -> bool:
    return ATTRIBUTE in Queue.BASE_ATTRIBUTES
