"""A stand-in for Lambda's SQS event source mapping, which AWS runs and moto does not.

It plays the part of the mapping eks-reaper's templates configure, and only that part:

- **batch size 1**: one `ReceiveMessage` of at most `batch_size` messages per round; on a
  FIFO queue SQS hands out one message group's messages in order, and a group with a
  message in flight hands out nothing more until that message is deleted or its
  visibility timeout ends;
- **the event** is Lambda's SQS event: `Records[]` with `messageId`, `receiptHandle`,
  `body`, `attributes` (`MessageGroupId`, `MessageDeduplicationId`, `SentTimestamp`,
  `ApproximateReceiveCount`), `eventSource` `aws:sqs`, `eventSourceARN`, `awsRegion`;
- **partial batch responses** (`ReportBatchItemFailures`): after the function answers,
  every record not listed in `batchItemFailures` is deleted; listed ones stay and come back
  after the visibility timeout. A function error (the RIE's `errorType` answer) deletes
  nothing: the whole batch comes back, as on AWS;
- **visibility timeout**: the one `ReceiveMessage` asks for, `visibility_timeout` seconds.

Maximum concurrency, scaling and the redrive to a dead-letter queue after
`maxReceiveCount` are not played: tests that need them say so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass
class Delivery:
    """One round: the records sent, the function's answer, what was deleted."""

    records: list[dict[str, Any]]
    answer: Any
    deleted: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)


class EventSourceMapping:
    def __init__(self, sqs: Any, queue_url: str, invoke: Callable[[dict], Any], *,
                 batch_size: int = 1, visibility_timeout: int = 60,
                 region: str = "us-east-1"):
        """`sqs` is a boto3 SQS client, `invoke(event) -> answer` calls the function (the
        answer parsed from JSON, or a dict with `errorType` for a function error)."""
        self.sqs = sqs
        self.queue_url = queue_url
        self.invoke = invoke
        self.batch_size = batch_size
        self.visibility_timeout = visibility_timeout
        self.region = region
        attrs = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
        self.queue_arn = attrs["Attributes"]["QueueArn"]

    def event(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        return {"Records": [{
            "messageId": m["MessageId"],
            "receiptHandle": m["ReceiptHandle"],
            "body": m["Body"],
            "attributes": m.get("Attributes", {}),
            "messageAttributes": {},
            "md5OfBody": m.get("MD5OfBody", ""),
            "eventSource": "aws:sqs",
            "eventSourceARN": self.queue_arn,
            "awsRegion": self.region,
        } for m in messages]}

    def poll_once(self) -> Delivery | None:
        """One round; None when the queue had nothing to hand out."""
        got = self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=self.batch_size,
            VisibilityTimeout=self.visibility_timeout, WaitTimeSeconds=0,
            AttributeNames=["All"])
        messages = got.get("Messages", [])
        if not messages:
            return None
        event = self.event(messages)
        answer = self.invoke(event)
        delivery = Delivery(records=event["Records"], answer=answer)
        if isinstance(answer, dict) and "errorType" in answer:
            delivery.kept = [m["MessageId"] for m in messages]
            return delivery
        failed = {f.get("itemIdentifier") for f in (answer or {}).get("batchItemFailures", [])}
        for m in messages:
            if m["MessageId"] in failed:
                delivery.kept.append(m["MessageId"])
            else:
                self.sqs.delete_message(QueueUrl=self.queue_url,
                                        ReceiptHandle=m["ReceiptHandle"])
                delivery.deleted.append(m["MessageId"])
        return delivery

    def drain(self, limit: int = 100) -> list[Delivery]:
        """Rounds until the queue hands out nothing (or `limit` rounds)."""
        out = []
        for _ in range(limit):
            d = self.poll_once()
            if d is None:
                break
            out.append(d)
        return out


def bodies(deliveries: list[Delivery]) -> list[dict[str, Any]]:
    """Every record's body, parsed, in delivery order."""
    return [json.loads(r["body"]) for d in deliveries for r in d.records]
