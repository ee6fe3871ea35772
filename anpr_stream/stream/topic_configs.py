"""Reading and changing topic configs: DescribeConfigs through aiokafka's admin client, and IncrementalAlterConfigs
(KIP-339), which aiokafka 0.14 lacks, as a request of our own.

Why not aiokafka's `alter_configs`: the legacy AlterConfigs request *replaces* the whole set of a topic's dynamic
configs with the ones sent; every override not in the request (an operator's `min.insync.replicas`, a
`message.timestamp.type`) silently reverts to the broker default. IncrementalAlterConfigs SETs only the keys named.
Should a broker ever lack it (it exists since Kafka 2.3), do not fall back to `alter_configs` without sending every
dynamic config to keep (DescribeConfigs with `config_source` DYNAMIC_TOPIC_CONFIG)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import for_code
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import Array, Boolean, Int8, Int16, Int32, Schema, String

_TOPIC = int(ConfigResourceType.TOPIC)
_SET = 0  # IncrementalAlterConfigs operation: SET (1 DELETE, 2 APPEND, 3 SUBTRACT)


class IncrementalAlterConfigsResponse_v0(Response):  # type: ignore[misc]  # aiokafka: untyped
    API_KEY = 44
    API_VERSION = 0
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        (
            "responses",
            Array(
                ("error_code", Int16),
                ("error_message", String("utf-8")),
                ("resource_type", Int8),
                ("resource_name", String("utf-8")),
            ),
        ),
    )


class IncrementalAlterConfigsRequest_v0(RequestStruct):  # type: ignore[misc]
    API_KEY = 44
    API_VERSION = 0
    RESPONSE_TYPE = IncrementalAlterConfigsResponse_v0
    SCHEMA = Schema(
        (
            "resources",
            Array(
                ("resource_type", Int8),
                ("resource_name", String("utf-8")),
                ("configs", Array(("name", String("utf-8")), ("config_operation", Int8), ("value", String("utf-8")))),
            ),
        ),
        ("validate_only", Boolean),
    )


class IncrementalAlterConfigsRequest(Request[IncrementalAlterConfigsRequest_v0]):  # type: ignore[misc]
    API_KEY = 44

    def __init__(self, resources: list[Any]) -> None:
        self._resources = resources

    def build(self, request_struct_class: type[IncrementalAlterConfigsRequest_v0]) -> IncrementalAlterConfigsRequest_v0:
        return request_struct_class(self._resources, False)


class TopicConfigError(RuntimeError):
    """The broker refused to describe or change a topic's configs (e.g. no ALTER_CONFIGS right)."""


async def describe_topic_configs(admin: AIOKafkaAdminClient, topics: list[str]) -> dict[str, dict[str, str | None]]:
    """Each topic's effective configs (dynamic, broker or default), by name."""
    if not topics:
        return {}
    responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, t) for t in topics])
    out: dict[str, dict[str, str | None]] = {}
    for response in responses:
        for resource in response.to_object()["resources"]:
            if resource["error_code"]:
                error = for_code(resource["error_code"])
                raise TopicConfigError(f"describing the configs of topic {resource['resource_name']}: "
                                       f"{error.__name__}: {resource['error_message']}")  # fmt: skip
            out[resource["resource_name"]] = {
                entry["config_names"]: entry["config_value"] for entry in resource["config_entries"]
            }
    return out


async def set_topic_configs(admin: AIOKafkaAdminClient, changes: Mapping[str, Mapping[str, str]]) -> None:
    """SET the given configs of each topic, leaving its other configs as they are."""
    resources = [
        (_TOPIC, topic, [(name, _SET, value) for name, value in sorted(configs.items())])
        for topic, configs in changes.items()
        if configs
    ]
    if not resources:
        return
    response = await admin._send_request(IncrementalAlterConfigsRequest(resources))  # aiokafka: no public send
    failed = [r for r in response.to_object()["responses"] if r["error_code"]]
    if failed:
        raise TopicConfigError("; ".join(
            f"changing the configs of topic {r['resource_name']}: {for_code(r['error_code']).__name__}: "
            f"{r['error_message']}" for r in failed
        ))  # fmt: skip
