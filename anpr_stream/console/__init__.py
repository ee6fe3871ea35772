"""The dispatch console: a static page (no build step, no CDN) fed by the live hits stream, and its offline map."""
