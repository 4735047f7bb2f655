// Package admin manages Braid streams and consumer groups: create,
// describe, alter, delete and list streams; split, merge and scale them;
// list and describe groups with their lag per shard.
//
// It speaks the Kafka protocol (through franz-go's kadm) where Kafka has
// the operation, and Braid's admin HTTP API (`braid serve --http-addr`)
// for what only Braid has: shard hash ranges, lineage and resharding.
//
//	adm, err := admin.New([]string{"127.0.0.1:9092"}, "127.0.0.1:9644")
//	if err != nil { ... }
//	defer adm.Close()
//	err = adm.CreateStream(ctx, "orders", 4, nil) // key routing
//	st, err := adm.DescribeStream(ctx, "orders")
//	_, err = adm.Split(ctx, "orders", 0, nil)
//
// Errors are typed: test them with errors.Is (ErrStreamExists,
// ErrUnknownStream, ErrUnknownGroup, ErrInvalid, ErrNoAdminAddr). A Client
// is safe for concurrent use; every call takes a context.
package admin
