-- Watchlist entries published from the workspace (POST /v1/watchlist/entries): who published an entry id first is
-- read from the audit log (its allowed watchlist.publish rows), so that another investigator cannot overwrite it.
-- A partial index keeps that lookup off the rest of the log.
CREATE INDEX audit_log_watchlist_publish ON audit_log ((parameters ->> 'entry_id'), id)
    WHERE endpoint = 'watchlist.publish' AND allowed;
