-- Flights with the city and state of both airports (seed.airports; a later issue replaces the seed
-- with change data capture from the operational database).
SELECT
  f.day,
  f.flight_id,
  f.departed_at,
  f.delay_minutes,
  f.distance_miles,
  f.origin,
  o.city AS origin_city,
  o.state AS origin_state,
  f.destination,
  d.city AS destination_city,
  d.state AS destination_state
FROM t1.flights AS f
LEFT JOIN seed.airports AS o ON o.iata = f.origin
LEFT JOIN seed.airports AS d ON d.iata = f.destination
