"""One pure adapter per vendor format: a `Payload` in, an `Adapted` (zero or more vendor reads, or a reason to ignore
the message) out, `PayloadError` for what cannot be read. No I/O, no clock, no settings: the source's own mapping
(cameras, time zone) is applied afterwards by anpr_stream.gateway.translate."""
