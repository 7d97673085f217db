-- Flights per day and route (origin × destination).
SELECT
  day,
  origin,
  destination,
  any_value(origin_state) AS origin_state,
  any_value(destination_state) AS destination_state,
  count(*) AS flights,
  avg(delay_minutes) AS avg_delay,
  sum(distance_miles) AS total_distance
FROM t2.flights_enriched
GROUP BY day, origin, destination
