-- A search by normalised plate goes through passages_plate_class_time (the plate's confusion class, then the plate
-- rechecked: api/passage_queries.py Key.PLATE): the plate's own btree cost about a sixth of every passage's write time
-- (benchmarks/bench_storage.py, the index write costs) and served nothing the class index cannot.
DROP INDEX IF EXISTS passages_plate_norm_time;
