// e2e-raw: end-to-end latency through a Kafka-protocol broker at a fixed rate, spoken by hand
// over two TCP connections, as the jobs peers' qbench speaks RESP to Redis: no client library
// on either side, so what is left between the two rows is the brokers.
//
//   - producer connection: Produce v3 (acks=-1), one batch of one record per request, written
//     at the pace and not waited for (a reader drains the responses and stops the run on an
//     error), as qbench pipelines XADD;
//   - consumer connection: Fetch v4 (min_bytes 1, max_wait MAX_WAIT_MS) in a loop from the log
//     end, each response parsed batch by batch and record by record (RecordBatch v2), the next
//     fetch sent once the records it returned are acknowledged: an OffsetCommit v2 of the
//     next offset for a simple consumer (group "e2e", generation -1), waited for, as the Redis
//     consumer XACKs each read before its next XREADGROUP. E2E_COMMIT=0 leaves the commits
//     out (Tidemark syncs every commit before answering it; Redis's XACK is in its AOF,
//     synced every second): the latency of the log alone.
//
// Each record's value starts with its send time (UnixNano, 8 bytes big-endian); the receive
// time minus it is the latency.
//
//	go build -o e2e-raw Benchmarks/jobs/e2e_raw/main.go      (standard library only)
//
// Usage: e2e-raw BROKER TOPIC RATE COUNT SIZE MAX_WAIT_MS SERVER_PID
// Prints: E2E proto kafka-raw rate R sent N received M elapsed_s S p50_us .. p90_us .. p99_us
// .. p999_us .. max_us .. server_us_per_msg .. server_cpu_pct ..
//
// Also: e2e-raw commits BROKER TOPIC WORKERS SECONDS SERVER_PID: the per-job acknowledgement
// alone, WORKERS connections each committing its next offset (OffsetCommit v2, a group of
// its own) and waiting for the answer, for SECONDS. Prints: COMMITS workers W commits N
// per_s .. p50_us .. p99_us .. server_us_per_commit ..
package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

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

// appendVarint appends a zigzag varint (Kafka's record fields).
func appendVarint(b []byte, v int64) []byte {
	return binary.AppendUvarint(b, uint64((v<<1)^(v>>63)))
}

// appendString appends a Kafka STRING (int16 length, bytes).
func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

// frame prefixes a request (header v1: api key, version, correlation id, client id) and its
// body with the int32 size.
func frame(apiKey, version int16, correlation int32, body []byte) []byte {
	b := make([]byte, 4, 4+14+len(body))
	b = binary.BigEndian.AppendUint16(b, uint16(apiKey))
	b = binary.BigEndian.AppendUint16(b, uint16(version))
	b = binary.BigEndian.AppendUint32(b, uint32(correlation))
	b = appendString(b, "e2e")
	b = append(b, body...)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

// batch is a RecordBatch v2 holding one record with `value`, stamped now.
func batch(value []byte, now int64) []byte {
	var record []byte
	record = append(record, 0)        // attributes
	record = appendVarint(record, 0)  // timestamp delta
	record = appendVarint(record, 0)  // offset delta
	record = appendVarint(record, -1) // no key
	record = appendVarint(record, int64(len(value)))
	record = append(record, value...)
	record = appendVarint(record, 0)                               // no headers
	var tail []byte                                                // from attributes to the end: what the CRC covers
	tail = binary.BigEndian.AppendUint16(tail, 0)                  // attributes
	tail = binary.BigEndian.AppendUint32(tail, 0)                  // last offset delta
	tail = binary.BigEndian.AppendUint64(tail, uint64(now))        // base timestamp
	tail = binary.BigEndian.AppendUint64(tail, uint64(now))        // max timestamp
	tail = binary.BigEndian.AppendUint64(tail, 0xFFFFFFFFFFFFFFFF) // producer id -1
	tail = binary.BigEndian.AppendUint16(tail, 0xFFFF)             // producer epoch -1
	tail = binary.BigEndian.AppendUint32(tail, 0xFFFFFFFF)         // base sequence -1
	tail = binary.BigEndian.AppendUint32(tail, 1)                  // records
	tail = appendVarint(tail, int64(len(record)))
	tail = append(tail, record...)
	var b []byte
	b = binary.BigEndian.AppendUint64(b, 0)                       // base offset
	b = binary.BigEndian.AppendUint32(b, uint32(4+1+4+len(tail))) // batch length
	b = binary.BigEndian.AppendUint32(b, 0xFFFFFFFF)              // partition leader epoch
	b = append(b, 2)                                              // magic
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(tail, castagnoli))
	return append(b, tail...)
}

// appendPartition0 appends the topics array of a request naming partition 0 of `topic` only
// (its per-partition fields follow).
func appendPartition0(b []byte, topic string) []byte {
	b = binary.BigEndian.AppendUint32(b, 1)
	b = appendString(b, topic)
	b = binary.BigEndian.AppendUint32(b, 1)
	return binary.BigEndian.AppendUint32(b, 0)
}

// produceBody is a Produce v3 body: one topic, partition 0, acks -1.
func produceBody(topic string, records []byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, 0xFFFF) // no transactional id
	b = binary.BigEndian.AppendUint16(b, 0xFFFF)    // acks -1
	b = binary.BigEndian.AppendUint32(b, 30000)     // timeout
	b = appendPartition0(b, topic)
	b = binary.BigEndian.AppendUint32(b, uint32(len(records)))
	return append(b, records...)
}

// fetchBody is a Fetch v4 body for partition 0 of `topic` from `offset`.
func fetchBody(topic string, offset int64, maxWait int32) []byte {
	b := binary.BigEndian.AppendUint32(nil, 0xFFFFFFFF) // replica id -1
	b = binary.BigEndian.AppendUint32(b, uint32(maxWait))
	b = binary.BigEndian.AppendUint32(b, 1)      // min bytes
	b = binary.BigEndian.AppendUint32(b, 16<<20) // max bytes
	b = append(b, 0)                             // read uncommitted
	b = appendPartition0(b, topic)
	b = binary.BigEndian.AppendUint64(b, uint64(offset))
	return binary.BigEndian.AppendUint32(b, 8<<20) // partition max bytes
}

// commitBody is an OffsetCommit v2 body: partition 0 of `topic` at `offset` for the simple
// consumer group `group` (no generation, no member).
func commitBody(group, topic string, offset int64) []byte {
	b := appendString(nil, group)
	b = binary.BigEndian.AppendUint32(b, 0xFFFFFFFF)         // generation -1
	b = appendString(b, "")                                  // member id
	b = binary.BigEndian.AppendUint64(b, 0xFFFFFFFFFFFFFFFF) // retention: the broker's
	b = appendPartition0(b, topic)
	b = binary.BigEndian.AppendUint64(b, uint64(offset))
	return binary.BigEndian.AppendUint16(b, 0xFFFF) // no metadata
}

// reader walks a response body; a read past the end sets err.
type reader struct {
	b   []byte
	err error
}

func (r *reader) take(n int) []byte {
	if r.err != nil || n < 0 || n > len(r.b) {
		r.err = errors.New("short response")
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}
func (r *reader) i16() int16 {
	b := r.take(2)
	if b == nil {
		return 0
	}
	return int16(binary.BigEndian.Uint16(b))
}
func (r *reader) i32() int32 {
	b := r.take(4)
	if b == nil {
		return 0
	}
	return int32(binary.BigEndian.Uint32(b))
}
func (r *reader) i64() int64 {
	b := r.take(8)
	if b == nil {
		return 0
	}
	return int64(binary.BigEndian.Uint64(b))
}
func (r *reader) varint() int64 {
	u, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errors.New("bad varint")
		return 0
	}
	r.b = r.b[n:]
	return int64(u>>1) ^ -int64(u&1)
}

// partition0 reads a response body up to the error code of its only partition (after
// `skip` leading bytes: Fetch's throttle time), and returns the reader after it, or the
// error code or shortage as an error.
func partition0(body []byte, skip int) (*reader, error) {
	r := &reader{b: body}
	r.take(skip)
	r.i32()              // topics
	r.take(int(r.i16())) // topic
	r.i32()              // partitions
	r.i32()              // partition index
	if code := r.i16(); code != 0 || r.err != nil {
		return nil, fmt.Errorf("error code %d %v", code, r.err)
	}
	return r, nil
}

// commit sends an OffsetCommit v2 of `offset` for `group` on `conn` and waits for its answer.
func commit(conn net.Conn, in *bufio.Reader, correlation int32, group, topic string, offset int64) error {
	if _, err := conn.Write(frame(8, 2, correlation, commitBody(group, topic, offset))); err != nil {
		return err
	}
	body, err := readFrame(in)
	if err != nil {
		return err
	}
	_, err = partition0(body, 0)
	return err
}

// readFrame reads one size-prefixed response and returns it without its correlation id.
func readFrame(in *bufio.Reader) ([]byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(in, size[:]); err != nil {
		return nil, err
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(in, body); err != nil {
		return nil, err
	}
	if len(body) < 4 {
		return nil, errors.New("short frame")
	}
	return body[4:], nil
}

// records calls `each` with the value of every record in the complete batches of a Fetch
// records field, and returns the offset after the last of them.
func records(data []byte, next int64, each func(value []byte)) (int64, error) {
	for len(data) >= 12 {
		base := int64(binary.BigEndian.Uint64(data))
		length := int(binary.BigEndian.Uint32(data[8:]))
		if 12+length > len(data) {
			break // a partial batch at the end of the response
		}
		r := &reader{b: data[12 : 12+length]}
		r.take(4 + 1 + 4 + 2) // leader epoch, magic, crc, attributes
		lastDelta := r.i32()
		r.take(8 + 8 + 8 + 2 + 4) // timestamps, producer id, epoch, sequence
		count := r.i32()
		for i := int32(0); i < count && r.err == nil; i++ {
			recordLength := r.varint()
			rec := &reader{b: r.take(int(recordLength))}
			rec.take(1)
			rec.varint()
			rec.varint()
			if keyLength := rec.varint(); keyLength > 0 {
				rec.take(int(keyLength))
			}
			value := rec.take(int(rec.varint()))
			if rec.err != nil {
				return next, rec.err
			}
			each(value)
		}
		if r.err != nil {
			return next, r.err
		}
		next = base + int64(lastDelta) + 1
		data = data[12+length:]
	}
	return next, nil
}

func percentile(sorted []int64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return float64(sorted[int(p*float64(len(sorted)-1))]) / 1000
}

// commitBench runs `workers` committers for `seconds` (see the usage above).
func commitBench(broker, topic string, workers, seconds, pid int) {
	var mu sync.Mutex
	var all []int64
	deadline := time.Now().Add(time.Duration(seconds) * time.Second)
	cpu0 := serverCPU(pid)
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			conn, err := net.Dial("tcp", broker)
			if err != nil {
				fmt.Fprintln(os.Stderr, "connect:", err)
				os.Exit(1)
			}
			in := bufio.NewReader(conn)
			group := fmt.Sprintf("worker-%d", w)
			var mine []int64
			for n := int64(1); time.Now().Before(deadline); n++ {
				sent := time.Now()
				if err := commit(conn, in, int32(n), group, topic, n); err != nil {
					fmt.Fprintln(os.Stderr, "commit:", err)
					os.Exit(1)
				}
				mine = append(mine, time.Since(sent).Nanoseconds())
			}
			mu.Lock()
			all = append(all, mine...)
			mu.Unlock()
		}(w)
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	cpu := serverCPU(pid) - cpu0
	sort.Slice(all, func(a, b int) bool { return all[a] < all[b] })
	fmt.Printf("COMMITS workers %d commits %d per_s %.0f p50_us %.0f p99_us %.0f server_us_per_commit %.2f\n",
		workers, len(all), float64(len(all))/elapsed, percentile(all, 0.5), percentile(all, 0.99), cpu*1e6/float64(len(all)))
}

func main() {
	if len(os.Args) == 7 && os.Args[1] == "commits" {
		workers, _ := strconv.Atoi(os.Args[4])
		seconds, _ := strconv.Atoi(os.Args[5])
		pid, _ := strconv.Atoi(os.Args[6])
		commitBench(os.Args[2], os.Args[3], workers, seconds, pid)
		return
	}
	if len(os.Args) != 8 {
		fmt.Fprintln(os.Stderr, "usage: e2e-raw BROKER TOPIC RATE COUNT SIZE MAX_WAIT_MS SERVER_PID")
		os.Exit(2)
	}
	broker, topic := os.Args[1], os.Args[2]
	rate, _ := strconv.ParseFloat(os.Args[3], 64)
	count, _ := strconv.Atoi(os.Args[4])
	size, _ := strconv.Atoi(os.Args[5])
	maxWait, _ := strconv.Atoi(os.Args[6])
	pid, _ := strconv.Atoi(os.Args[7])
	fail := func(what string, err error) {
		fmt.Fprintln(os.Stderr, what+":", err)
		os.Exit(1)
	}

	// The consumer starts at the log end: ListOffsets v1 (timestamp -1).
	cc, err := net.Dial("tcp", broker)
	if err != nil {
		fail("consumer connection", err)
	}
	cin := bufio.NewReaderSize(cc, 1<<20)
	list := appendPartition0(binary.BigEndian.AppendUint32(nil, 0xFFFFFFFF), topic) // replica id -1
	list = binary.BigEndian.AppendUint64(list, 0xFFFFFFFFFFFFFFFF)                  // latest
	if _, err := cc.Write(frame(2, 1, 1, list)); err != nil {
		fail("list offsets", err)
	}
	body, err := readFrame(cin)
	if err != nil {
		fail("list offsets", err)
	}
	r, err := partition0(body, 0)
	if err != nil {
		fail("list offsets", err)
	}
	r.i64()
	offset := r.i64()

	commits := os.Getenv("E2E_COMMIT") != "0"
	proto := "kafka-raw"
	if !commits {
		proto = "kafka-raw-nocommit"
	}
	latencies := make([]int64, 0, count)
	var mu sync.Mutex
	done := make(chan struct{})
	go func() {
		for correlation := int32(2); ; correlation++ {
			if _, err := cc.Write(frame(1, 4, correlation, fetchBody(topic, offset, int32(maxWait)))); err != nil {
				fail("fetch", err)
			}
			body, err := readFrame(cin)
			if err != nil {
				fail("fetch", err)
			}
			now := time.Now().UnixNano()
			r, err := partition0(body, 4) // after the throttle time
			if err != nil {
				fail("fetch", err)
			}
			r.take(16) // high watermark, last stable offset
			if aborted := r.i32(); aborted > 0 {
				r.take(16 * int(aborted))
			}
			var data []byte
			if length := r.i32(); length > 0 { // -1: null records
				data = r.take(int(length))
			}
			if r.err != nil {
				fail("fetch", r.err)
			}
			mu.Lock()
			offset, err = records(data, offset, func(value []byte) {
				if len(value) >= 8 {
					latencies = append(latencies, now-int64(binary.BigEndian.Uint64(value)))
				}
			})
			finished := len(latencies) >= count
			mu.Unlock()
			if err != nil {
				fail("records", err)
			}
			if finished {
				close(done)
				return
			}
			if len(data) > 0 && commits {
				correlation++
				if err := commit(cc, cin, correlation, "e2e", topic, offset); err != nil {
					fail("offset commit", err)
				}
			}
		}
	}()

	pc, err := net.Dial("tcp", broker)
	if err != nil {
		fail("producer connection", err)
	}
	go func() { // the acknowledgements: drained, checked
		in := bufio.NewReader(pc)
		for {
			body, err := readFrame(in)
			if err != nil {
				return
			}
			if _, err := partition0(body, 0); err != nil {
				fail("produce", err)
			}
		}
	}()

	value := make([]byte, size)
	for i := 8; i < size; i++ {
		value[i] = byte('a' + i%26)
	}
	cpu0 := serverCPU(pid)
	start := time.Now()
	interval := time.Duration(float64(time.Second) / rate)
	for i := 0; i < count; i++ {
		if wait := time.Until(start.Add(time.Duration(i) * interval)); wait > 0 {
			time.Sleep(wait)
		}
		now := time.Now().UnixNano()
		binary.BigEndian.PutUint64(value, uint64(now))
		if _, err := pc.Write(frame(0, 3, int32(i), produceBody(topic, batch(value, now/1e6)))); err != nil {
			fail("produce", err)
		}
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
	}
	elapsed := time.Since(start).Seconds()
	cpu := serverCPU(pid) - cpu0
	mu.Lock()
	sorted := append([]int64(nil), latencies...)
	mu.Unlock()
	sort.Slice(sorted, func(a, b int) bool { return sorted[a] < sorted[b] })
	perMessage := 0.0
	if len(sorted) > 0 {
		perMessage = cpu * 1e6 / float64(len(sorted))
	}
	fmt.Printf("E2E proto %s rate %.0f sent %d received %d elapsed_s %.2f p50_us %.0f p90_us %.0f p99_us %.0f p999_us %.0f max_us %.0f server_us_per_msg %.2f server_cpu_pct %.0f\n",
		proto, rate, count, len(sorted), elapsed, percentile(sorted, 0.5), percentile(sorted, 0.9), percentile(sorted, 0.99),
		percentile(sorted, 0.999), percentile(sorted, 1), perMessage, cpu*100/elapsed)
}
