// Package e2e holds Braid's end-to-end tests: each test starts a real
// `braid serve` process (internal/braidtest) and talks to it only over the
// Kafka protocol, with franz-go (kgo, kadm, raw kmsg requests), with kcat
// (librdkafka) and with hand-made frames on raw TCP connections.
//
// What is covered:
//
//   - produce and consume with every codec (none, gzip, snappy, lz4, zstd),
//     keyed and unkeyed records, headers, null and empty values, records up
//     to ~900 KB, consuming from the start, a middle offset and the end, and
//     acks=all, acks=1 and acks=0 (produce_consume_test.go);
//   - interoperability with kcat / librdkafka: metadata listing, producing
//     with keys, headers and each codec, consuming with a format string, and
//     data crossing between kcat and franz-go (kcat_test.go);
//   - ListOffsets: earliest, latest, by timestamp and max timestamp
//     (list_offsets_test.go);
//   - topic administration: CreateTopics with configs and its refusals,
//     CreatePartitions, DeleteTopics and re-creation (topics_test.go);
//   - topic configs: DescribeConfigs sources, IncrementalAlterConfigs
//     (SET, DELETE, APPEND, SUBTRACT), legacy AlterConfigs replace-all
//     semantics, refused values, max.message.bytes and
//     message.timestamp.type=LogAppendTime (configs_test.go);
//   - DeleteRecords and its effect on fetches, across a graceful restart
//     (delete_records_test.go);
//   - durability and offset continuity across a graceful restart and
//     after SIGKILL (restart_test.go);
//   - DescribeCluster, Metadata and OffsetForLeaderEpoch (cluster_test.go);
//   - robustness against malformed frames, unknown APIs and versions, and
//     the KIP-511 ApiVersions fallback (robustness_test.go);
//   - a full disk on a real tmpfs: KAFKA_STORAGE_ERROR at once, /healthz
//     and braid_storage_state, and writes resuming without a restart with
//     every acknowledged record there once (disk_full_test.go; needs root
//     to mount, skipped elsewhere except under CI).
//
// Every test bounds its own run time with a context; nothing sleeps to
// synchronise: tests poll with a deadline where they must wait. kcat tests
// are skipped when /usr/bin/kcat is missing.
package e2e
