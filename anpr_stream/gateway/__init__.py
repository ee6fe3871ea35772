"""The camera gateway: vendor payloads in (HTTP, MQTT), readings out to the reads topic, nothing acknowledged lost."""
