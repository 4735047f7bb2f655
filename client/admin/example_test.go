package admin_test

// These examples need a Braid node (Kafka on 127.0.0.1:9092, admin HTTP on
// 127.0.0.1:9644), so they have no "Output:" comment: go test compiles
// them but does not run them.

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/braidstream/braid/client/admin"
)

// Create a stream, split its first shard, and look at the lineage.
func Example() {
	adm, err := admin.New([]string{"127.0.0.1:9092"}, "127.0.0.1:9644")
	if err != nil {
		log.Fatal(err)
	}
	defer adm.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	err = adm.CreateStream(ctx, "orders", 2, map[string]string{"retention.ms": "604800000"})
	if err != nil && !errors.Is(err, admin.ErrStreamExists) {
		log.Fatal(err)
	}
	if _, err := adm.Split(ctx, "orders", 0, nil); err != nil {
		log.Fatal(err)
	}
	st, err := adm.DescribeStream(ctx, "orders")
	if err != nil {
		log.Fatal(err)
	}
	for _, sh := range st.Shards {
		fmt.Printf("shard %d %s parents %v children %v\n", sh.ID, sh.State, sh.Parents, sh.Children)
	}
}

// How far behind is a consumer group, shard by shard?
func ExampleClient_DescribeGroup() {
	adm, err := admin.New([]string{"127.0.0.1:9092"}, "")
	if err != nil {
		log.Fatal(err)
	}
	defer adm.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	g, err := adm.DescribeGroup(ctx, "billing")
	if errors.Is(err, admin.ErrUnknownGroup) {
		log.Fatal("no such group")
	} else if err != nil {
		log.Fatal(err)
	}
	for _, l := range g.Lag {
		fmt.Printf("%s/%d: committed %d, end %d, lag %d\n", l.Stream, l.Shard, l.Committed, l.End, l.Lag)
	}
	fmt.Println("total lag:", g.TotalLag)
}
