"""The data protection officer's report: what is held against the retention policy, purges, and who asked what."""
