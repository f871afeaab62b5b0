// e2e-sarama: end-to-end latency through a Kafka-protocol broker at a fixed rate, with a Go
// client (sarama), so Tidemark can be set beside Redis Streams measured by the jobs peers'
// Go client (qbench -mode e2e) without a Python client (confluent-kafka) in one row and Go
// in the other. One process: a producer (async, acks=all, one message per request as soon
// as it is sent) writes its send time (UnixNano, 19 decimal digits) at the start of each
// payload; a partition consumer (long poll: fetch.min 1 byte, max wait MAX_WAIT_MS) on its
// own connection records receive time - send time for every message.
//
// Built in GOPATH mode from Debian's golang-github-shopify-sarama-dev:
//
//	GOPATH=/usr/share/gocode GO111MODULE=off go build -o e2e-sarama Benchmarks/jobs/e2e_sarama/main.go
//
// Usage: e2e-sarama BROKER TOPIC RATE COUNT SIZE MAX_WAIT_MS SERVER_PID
// Prints: E2E proto kafka-sarama rate R sent N received M elapsed_s S p50_us .. p90_us ..
// p99_us .. p999_us .. max_us .. server_us_per_msg .. server_cpu_pct ..
package main

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/Shopify/sarama"
)

// serverCPU is the broker process's user+system CPU seconds (from /proc).
func serverCPU(pid int) float64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	text := string(raw)
	fields := strings.Fields(text[strings.LastIndexByte(text, ')')+2:])
	user, _ := strconv.ParseFloat(fields[11], 64)
	system, _ := strconv.ParseFloat(fields[12], 64)
	return (user + system) / 100
}

func main() {
	if len(os.Args) != 8 {
		fmt.Fprintln(os.Stderr, "usage: e2e-sarama BROKER TOPIC RATE COUNT SIZE MAX_WAIT_MS SERVER_PID")
		os.Exit(2)
	}
	broker, topic := os.Args[1], os.Args[2]
	rate, _ := strconv.ParseFloat(os.Args[3], 64)
	count, _ := strconv.Atoi(os.Args[4])
	size, _ := strconv.Atoi(os.Args[5])
	maxWait, _ := strconv.Atoi(os.Args[6])
	pid, _ := strconv.Atoi(os.Args[7])

	config := sarama.NewConfig()
	config.Version = sarama.V2_1_0_0
	config.Producer.RequiredAcks = sarama.WaitForAll
	config.Producer.Return.Successes = false
	config.Producer.Return.Errors = true
	config.Producer.Flush.Frequency = 0
	config.Producer.Flush.Messages = 0
	config.Consumer.Fetch.Min = 1
	config.Consumer.MaxWaitTime = time.Duration(maxWait) * time.Millisecond
	config.ChannelBufferSize = 4096

	consumer, err := sarama.NewConsumer([]string{broker}, config)
	if err != nil {
		fmt.Fprintln(os.Stderr, "consumer:", err)
		os.Exit(1)
	}
	partition, err := consumer.ConsumePartition(topic, 0, sarama.OffsetNewest)
	if err != nil {
		fmt.Fprintln(os.Stderr, "consume:", err)
		os.Exit(1)
	}
	producer, err := sarama.NewAsyncProducer([]string{broker}, config)
	if err != nil {
		fmt.Fprintln(os.Stderr, "producer:", err)
		os.Exit(1)
	}
	go func() {
		for e := range producer.Errors() {
			fmt.Fprintln(os.Stderr, "produce error:", e.Err)
		}
	}()
	time.Sleep(500 * time.Millisecond) // the consumer's first long poll is in place

	latencies := make([]int64, 0, count)
	var mu sync.Mutex
	done := make(chan struct{})
	go func() {
		for msg := range partition.Messages() {
			now := time.Now().UnixNano()
			sent, _ := strconv.ParseInt(string(msg.Value[:19]), 10, 64)
			mu.Lock()
			latencies = append(latencies, now-sent)
			n := len(latencies)
			mu.Unlock()
			if n == count {
				close(done)
				return
			}
		}
	}()

	cpu0, start := serverCPU(pid), time.Now()
	interval := float64(time.Second) / rate
	payload := make([]byte, size)
	for i := 0; i < count; i++ {
		if wait := time.Until(start.Add(time.Duration(float64(i) * interval))); wait > 0 {
			time.Sleep(wait)
		}
		value := make([]byte, size)
		copy(value, payload)
		copy(value, strconv.FormatInt(time.Now().UnixNano(), 10))
		producer.Input() <- &sarama.ProducerMessage{Topic: topic, Partition: 0, Value: sarama.ByteEncoder(value)}
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
	}
	elapsed := time.Since(start).Seconds()
	cpu := serverCPU(pid) - cpu0
	mu.Lock()
	sort.Slice(latencies, func(a, b int) bool { return latencies[a] < latencies[b] })
	at := func(q float64) float64 {
		if len(latencies) == 0 {
			return 0
		}
		return float64(latencies[int(q*float64(len(latencies)-1))]) / 1e3
	}
	fmt.Printf("E2E proto kafka-sarama rate %.0f sent %d received %d elapsed_s %.2f p50_us %.0f p90_us %.0f p99_us %.0f p999_us %.0f max_us %.0f server_us_per_msg %.2f server_cpu_pct %.0f\n",
		rate, count, len(latencies), elapsed, at(0.5), at(0.9), at(0.99), at(0.999), at(1), cpu/float64(len(latencies)+1)*1e6, 100*cpu/elapsed)
	mu.Unlock()
	producer.Close()
	partition.Close()
	consumer.Close()
}
