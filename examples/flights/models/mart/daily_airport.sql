-- Departures per day and origin airport: volume, delays and distance.
SELECT
  day,
  origin,
  any_value(origin_city) AS origin_city,
  any_value(origin_state) AS origin_state,
  count(*) AS flights,
  avg(delay_minutes) AS avg_delay,
  quantile_cont(delay_minutes, 0.95) AS p95_delay,
  avg(CASE WHEN delay_minutes <= 15 THEN 1.0 ELSE 0.0 END) AS on_time_share,
  sum(distance_miles) AS total_distance
FROM t2.flights_enriched
GROUP BY day, origin
