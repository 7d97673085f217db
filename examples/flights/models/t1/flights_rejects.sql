-- Flight events that t1.flights leaves out, with the first reason that applies.
SELECT
  event_day(_event_time) AS day,
  flight_id,
  _event_id AS event_id,
  _received_at AS received_at,
  CASE
    WHEN delay IS NULL THEN 'delay is missing'
    WHEN distance IS NULL OR distance <= 0 THEN 'distance is missing or not positive'
    WHEN NOT regexp_full_match(origin, '[A-Z0-9]{3}') THEN 'origin is not an airport code'
    WHEN NOT regexp_full_match(destination, '[A-Z0-9]{3}') THEN 'destination is not an airport code'
    ELSE 'origin equals destination'
  END AS reason,
  origin,
  destination,
  delay,
  distance
FROM raw.flights
WHERE delay IS NULL
  OR distance IS NULL
  OR distance <= 0
  OR NOT regexp_full_match(origin, '[A-Z0-9]{3}')
  OR NOT regexp_full_match(destination, '[A-Z0-9]{3}')
  OR origin = destination
