// sarama-check: what a sarama-based Go tool (a lag checker, a small service) does against a
// broker, with request versions picked from a configured Kafka version and no ApiVersions:
// produce, consume with a consumer group and commit, then read the committed offsets back
// from __consumer_offsets the way lag exporters do (no consumer online) and compute lag.
//
// Built in GOPATH mode from Debian's golang-github-shopify-sarama-dev (sarama 1.22, whose
// newest known version is Kafka 2.2):
//
//	GOPATH=/usr/share/gocode GO111MODULE=off go build -o sarama-check Tests/interop/sarama/main.go
//
// Usage: sarama-check BROKER KAFKA_VERSION TOPIC GROUP COUNT. Prints one JSON line.
package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/Shopify/sarama"
)

type handler struct {
	mu       sync.Mutex
	seen     map[string]bool
	want     int
	done     chan struct{}
	doneOnce sync.Once
}

func (h *handler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *handler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h *handler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for msg := range claim.Messages() {
		h.mu.Lock()
		h.seen[string(msg.Value)] = true
		n := len(h.seen)
		h.mu.Unlock()
		sess.MarkMessage(msg, "sarama")
		if n >= h.want {
			h.doneOnce.Do(func() { close(h.done) })
		}
	}
	return nil
}

// committed reads __consumer_offsets from the beginning to its end and returns the last
// committed offset of each partition of topic for group (OffsetCommitKey v0/v1 and
// OffsetCommitValue v0-v3, the layouts Kafka writes).
func committed(client sarama.Client, group, topic string) (map[int32]int64, int, error) {
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return nil, 0, err
	}
	defer consumer.Close()
	partitions, err := client.Partitions("__consumer_offsets")
	if err != nil {
		return nil, 0, err
	}
	result := map[int32]int64{}
	records := 0
	for _, p := range partitions {
		end, err := client.GetOffset("__consumer_offsets", p, sarama.OffsetNewest)
		if err != nil {
			return nil, 0, err
		}
		if end == 0 {
			continue
		}
		pc, err := consumer.ConsumePartition("__consumer_offsets", p, sarama.OffsetOldest)
		if err != nil {
			return nil, 0, err
		}
		for msg := range pc.Messages() {
			records++
			g, t, part, ok := parseKey(msg.Key)
			if ok && g == group && t == topic {
				if msg.Value == nil {
					delete(result, part)
				} else if offset, ok := parseValue(msg.Value); ok {
					result[part] = offset
				}
			}
			if msg.Offset+1 >= end {
				break
			}
		}
		pc.Close()
	}
	return result, records, nil
}

func readString(b []byte) (string, []byte, bool) {
	if len(b) < 2 {
		return "", nil, false
	}
	n := int(int16(binary.BigEndian.Uint16(b)))
	if n < 0 || len(b) < 2+n {
		return "", nil, false
	}
	return string(b[2 : 2+n]), b[2+n:], true
}

func parseKey(b []byte) (string, string, int32, bool) {
	if len(b) < 2 {
		return "", "", 0, false
	}
	version := binary.BigEndian.Uint16(b)
	if version > 1 {
		return "", "", 0, false // group metadata, not an offset commit
	}
	g, rest, ok := readString(b[2:])
	if !ok {
		return "", "", 0, false
	}
	t, rest, ok := readString(rest)
	if !ok || len(rest) < 4 {
		return "", "", 0, false
	}
	return g, t, int32(binary.BigEndian.Uint32(rest)), true
}

func parseValue(b []byte) (int64, bool) {
	if len(b) < 10 {
		return 0, false
	}
	version := binary.BigEndian.Uint16(b)
	if version > 3 {
		return 0, false
	}
	return int64(binary.BigEndian.Uint64(b[2:10])), true
}

func run() (map[string]interface{}, error) {
	if len(os.Args) != 6 {
		return nil, errors.New("usage: sarama-check BROKER KAFKA_VERSION TOPIC GROUP COUNT")
	}
	broker, topic, group := os.Args[1], os.Args[3], os.Args[4]
	count, err := strconv.Atoi(os.Args[5])
	if err != nil {
		return nil, err
	}
	version, err := sarama.ParseKafkaVersion(os.Args[2])
	if err != nil {
		return nil, err
	}
	config := sarama.NewConfig()
	config.Version = version
	config.ClientID = "sarama-check"
	config.Producer.Return.Successes = true
	config.Producer.RequiredAcks = sarama.WaitForAll
	config.Producer.Partitioner = sarama.NewHashPartitioner
	config.Consumer.Offsets.Initial = sarama.OffsetOldest
	config.Consumer.Offsets.CommitInterval = 100 * time.Millisecond
	config.Metadata.Retry.Max = 10
	config.Metadata.Retry.Backoff = 200 * time.Millisecond

	client, err := sarama.NewClient([]string{broker}, config)
	if err != nil {
		return nil, fmt.Errorf("client: %v", err)
	}
	defer client.Close()

	producer, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		return nil, fmt.Errorf("producer: %v", err)
	}
	for i := 0; i < count; i++ {
		msg := &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(fmt.Sprintf("k%d", i%7)),
			Value: sarama.StringEncoder(fmt.Sprintf("m%d", i))}
		if _, _, err := producer.SendMessage(msg); err != nil {
			return nil, fmt.Errorf("produce %d: %v", i, err)
		}
	}
	producer.Close()

	cg, err := sarama.NewConsumerGroup([]string{broker}, group, config)
	if err != nil {
		return nil, fmt.Errorf("consumer group: %v", err)
	}
	h := &handler{seen: map[string]bool{}, want: count, done: make(chan struct{})}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			if err := cg.Consume(ctx, []string{topic}, h); err != nil {
				fmt.Fprintln(os.Stderr, "consume:", err)
				time.Sleep(200 * time.Millisecond)
			}
		}
	}()
	select {
	case <-h.done:
	case <-ctx.Done():
		return nil, fmt.Errorf("consumed %d of %d before the deadline", len(h.seen), count)
	}
	time.Sleep(500 * time.Millisecond) // a commit interval or more
	cancel()
	if err := cg.Close(); err != nil {
		return nil, fmt.Errorf("close group: %v", err)
	}

	// Lag with no consumer online: committed offsets from __consumer_offsets vs the ends.
	if err := client.RefreshMetadata(); err != nil {
		return nil, err
	}
	offsets, records, err := committed(client, group, topic)
	if err != nil {
		return nil, fmt.Errorf("__consumer_offsets: %v", err)
	}
	partitions, err := client.Partitions(topic)
	if err != nil {
		return nil, err
	}
	var lag int64
	committedTotal := int64(0)
	for _, p := range partitions {
		end, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			return nil, err
		}
		lag += end - offsets[p]
		committedTotal += offsets[p]
	}
	return map[string]interface{}{
		"consumed": len(h.seen), "committed": committedTotal, "lag": lag,
		"offset_records": records, "partitions": len(partitions),
	}, nil
}

func main() {
	result, err := run()
	if err != nil {
		json.NewEncoder(os.Stdout).Encode(map[string]string{"error": err.Error()})
		os.Exit(1)
	}
	json.NewEncoder(os.Stdout).Encode(result)
}
