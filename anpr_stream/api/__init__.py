"""The query API: investigations, hits and acknowledgements, the DPO report; access rules and audit."""
