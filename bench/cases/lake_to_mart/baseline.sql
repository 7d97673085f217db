-- Baseline of lake_to_mart: the flights marts written by hand, one DuckDB script over the raw Parquet
-- files, as a person would write it without Tributary. The same logic as examples/flights/models.
-- baseline.ts fills in {{raw}} (glob of the raw files), {{airports}}, {{out}}, {{threads}},
-- {{memory_limit}} and {{temp_directory}}, and runs the statements in order.

SET threads = {{threads}};
SET memory_limit = '{{memory_limit}}';
SET temp_directory = '{{temp_directory}}';
SET TimeZone = 'UTC';

CREATE TEMP VIEW raw_flights AS
SELECT * FROM read_parquet('{{raw}}', hive_partitioning = true);

-- t1.flights: valid rows, one per flight_id and day (the latest receipt wins).
CREATE TEMP TABLE flights AS
SELECT
  CAST(_event_time AS DATE) AS day,
  flight_id,
  date AS departed_at,
  CAST(delay AS INTEGER) AS delay_minutes,
  CAST(distance AS INTEGER) AS distance_miles,
  origin,
  destination,
  _received_at AS received_at
FROM raw_flights
WHERE delay IS NOT NULL
  AND distance > 0
  AND regexp_full_match(origin, '[A-Z0-9]{3}')
  AND regexp_full_match(destination, '[A-Z0-9]{3}')
  AND origin <> destination
QUALIFY row_number() OVER (
  PARTITION BY CAST(_event_time AS DATE), flight_id ORDER BY _received_at DESC, _event_id
) = 1;

COPY flights TO '{{out}}/t1/flights' (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (day));

-- t1.flights_rejects: the rows left out, with the first reason that applies.
COPY (
  SELECT
    CAST(_event_time AS DATE) AS day,
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
  FROM raw_flights
  WHERE delay IS NULL
    OR distance IS NULL
    OR distance <= 0
    OR NOT regexp_full_match(origin, '[A-Z0-9]{3}')
    OR NOT regexp_full_match(destination, '[A-Z0-9]{3}')
    OR origin = destination
) TO '{{out}}/t1/flights_rejects' (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (day));

CREATE TEMP TABLE airports AS
SELECT * FROM read_csv('{{airports}}', header = true);

-- t2.flights_enriched: city and state of both airports.
CREATE TEMP TABLE flights_enriched AS
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
FROM flights AS f
LEFT JOIN airports AS o ON o.iata = f.origin
LEFT JOIN airports AS d ON d.iata = f.destination;

COPY flights_enriched TO '{{out}}/t2/flights_enriched' (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (day));

-- mart.daily_airport
COPY (
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
  FROM flights_enriched
  GROUP BY day, origin
) TO '{{out}}/mart/daily_airport' (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (day));

-- mart.daily_route
COPY (
  SELECT
    day,
    origin,
    destination,
    any_value(origin_state) AS origin_state,
    any_value(destination_state) AS destination_state,
    count(*) AS flights,
    avg(delay_minutes) AS avg_delay,
    sum(distance_miles) AS total_distance
  FROM flights_enriched
  GROUP BY day, origin, destination
) TO '{{out}}/mart/daily_route' (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (day));
