"""The byte-level protocol of a run's shared directory: it knows paths, bytes and arrays, not
algorithms, and imports neither `islands` nor `launcher`.

Encoding (every file is an envelope; docs/FORMATS.md):
- `format`: the envelope (header, CRC, kinds) around one msgpack body: encode / decode.
- `values`: what a body may hold, and the bounded msgpack decoder.
- `batches`: `MigrantBatch` and its "migrants" file, dispatching between the two schemas.
- `format_packed`: migrant batches of array genomes in one binary layout (schema 2).
- `genome_codecs`: per-genome codecs that algorithms register for genome kinds that are not one array.
- `island_ids`: the island id rule (`island-07`) and id <-> number.

Files:
- `atomic`: atomic publish and capped, symlink-safe reading.
- `files`: what the file classes share (containment, envelope reads, lock files, lines).
- `rundir`: `RunDir`, the run-level files (layout, manifest, champion, summary, target, launcher).
- `island_files`: `IslandFiles`, one island's files (claim, status, history, checkpoints, log).
- `scheduler_files`: `SchedulerFiles`, the SLURM records.
- `lease`: the island claim's lease (host, pid, heartbeat).
- `fsinfo`: which filesystem holds the run and whether its locks reach other hosts.

Migration:
- `ring`: the migrant ring, one file per island rewritten in place (layout, writer, readers).
- `pool`: `Pool`, one island's view: publish into its ring, read its neighbours'.
- `legacy_batches`: write-once `gen-*.isld` batch files of earlier versions, still read.
- `topology`: who reads whom.
- `errors`: the error types.
"""
