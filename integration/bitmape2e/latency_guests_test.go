//go:build guests

package bitmape2e

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkLiveQEMUDiskBitmapLatency measures event latency through
// --qemu --drive on an ext4 data disk: XA_BITMAP_ROUNDS (default 20) times
// the guest creates one file in the watched /root and syncs; the latency is
// from the guest command's end reaching the host (its sync returned, plus
// the serial line's delay) to the MKFILE line in xascript's output (polled
// every 5 ms). That start is late by the serial line's delay, so a sync
// that happened to be read by a poll right away can show about 0 ms; the
// same figures measured from the command's start (touch and sync included:
// an upper bound) are reported as sent-*. It reports min, median, p90 and
// max in ms; XA_BITMAP_INTERVAL
// sets --interval (default 1s). The goal is at most one interval plus 50 ms.
// The rounds are spaced by a pseudo-random pause so that syncs fall at
// every phase of the polling interval.
//
//	XASCRIPT_BIN=$PWD/bin/xascript go test -tags guests -run '^$' \
//	    -bench LiveQEMUDiskBitmapLatency -benchtime 1x ./integration/bitmape2e/
func BenchmarkLiveQEMUDiskBitmapLatency(b *testing.B) {
	e := setup(b)
	rounds := 20
	if v := os.Getenv("XA_BITMAP_ROUNDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("XA_BITMAP_ROUNDS=%q", v)
		}
		rounds = n
	}
	interval := "1s"
	if v := os.Getenv("XA_BITMAP_INTERVAL"); v != "" {
		interval = v
	}
	g := bootDisk(b, e, "ext4")
	w := attach(b, e, g, interval, "lat")
	var lat, fromSent []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for r := 0; r < rounds; r++ {
			// Spread the syncs over the interval's phases (0..1.3 s).
			time.Sleep(time.Duration((r*7919)%1300) * time.Millisecond)
			name := fmt.Sprintf("l%d-%d", i, r)
			sent := time.Now()
			if out, err := g.Run("touch /mnt/root/"+name+" && sync", 120*time.Second); err != nil {
				b.Fatalf("guest: %v: %s", err, out)
			}
			synced := time.Now()
			want := "MKFILE: /root/" + name
			for {
				data, _ := os.ReadFile(w.stdout)
				if strings.Contains(string(data), want+"\n") {
					break
				}
				if time.Since(synced) > 30*time.Second {
					b.Fatalf("no %q 30s after the guest's sync", want)
				}
				time.Sleep(5 * time.Millisecond)
			}
			lat = append(lat, time.Since(synced))
			fromSent = append(fromSent, time.Since(sent))
		}
	}
	b.StopTimer()
	ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
	for _, set := range []struct {
		prefix string
		d      []time.Duration
	}{{"", lat}, {"sent-", fromSent}} {
		d := set.d
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		p := func(q float64) time.Duration { return d[min(len(d)-1, int(q*float64(len(d))))] }
		b.ReportMetric(ms(d[0]), set.prefix+"min-ms")
		b.ReportMetric(ms(p(0.5)), set.prefix+"median-ms")
		b.ReportMetric(ms(p(0.9)), set.prefix+"p90-ms")
		b.ReportMetric(ms(d[len(d)-1]), set.prefix+"max-ms")
		b.Logf("interval %s, %d events, from the %s: min %.0f ms, median %.0f ms, p90 %.0f ms, max %.0f ms",
			interval, len(d), map[string]string{"": "sync's end", "sent-": "command's start"}[set.prefix],
			ms(d[0]), ms(p(0.5)), ms(p(0.9)), ms(d[len(d)-1]))
	}
	b.ReportMetric(0, "ns/op")
}
