-- Typed flights, one row per flight_id and day. A retried or re-sent event is kept once: the
-- latest receipt wins (within the day, as every partitioned model only reads its own day).
-- Rows that fail the checks below go to t1.flights_rejects instead, with the reason.
SELECT
  event_day(_event_time) AS day,
  flight_id,
  date AS departed_at,
  CAST(delay AS INTEGER) AS delay_minutes,
  CAST(distance AS INTEGER) AS distance_miles,
  origin,
  destination,
  _received_at AS received_at
FROM raw.flights
WHERE delay IS NOT NULL
  AND distance > 0
  AND regexp_full_match(origin, '[A-Z0-9]{3}')
  AND regexp_full_match(destination, '[A-Z0-9]{3}')
  AND origin <> destination
QUALIFY row_number() OVER (PARTITION BY day, flight_id ORDER BY _received_at DESC, _event_id) = 1
