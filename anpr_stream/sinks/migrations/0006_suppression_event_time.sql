-- Repeat suppression in event-time order (scale-out): a hit is suppressed when any dispatch-eligible hit of the same
-- (confusion-class plate, entry) was observed within the window BEFORE it, whatever that hit's own decision. The
-- lookup therefore needs suppressed hits too.
DROP INDEX hits_suppression;
CREATE INDEX hits_suppression ON hits (plate_class, entry_id, observed_at) WHERE dispatch;
