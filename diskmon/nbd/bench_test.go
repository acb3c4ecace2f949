package nbd

import (
	"fmt"
	"testing"
)

// BenchmarkClientServer measures a round trip through the server over a unix socket
// with the package's own client: one request at a time, and 16 in flight.
func BenchmarkClientServer(b *testing.B) {
	for _, op := range []Op{OpRead, OpWrite} {
		for _, depth := range []int{1, 16} {
			for _, inflight := range []int{1, 16} {
				b.Run(fmt.Sprintf("op=%s/size=64k/depth=%d/server-inflight=%d", op, depth, inflight), func(b *testing.B) {
					fb, _ := newImage(b, 64<<20)
					_, sock := startServer(b, fb, Options{Logf: func(string, ...any) {}, MaxInFlight: inflight})
					c := dial(b, sock, ClientOptions{})
					bufs := make([][]byte, depth)
					for i := range bufs {
						bufs[i] = make([]byte, 64<<10)
					}
					b.SetBytes(64 << 10)
					b.ResetTimer()
					ps := make([]*Pending, 0, depth)
					for i := 0; i < b.N; i += depth {
						ps = ps[:0]
						for j := 0; j < depth && i+j < b.N; j++ {
							off := uint64((i+j)%1024) * 64 << 10
							p, err := c.Start(Request{Type: op, Offset: off, Length: 64 << 10, Data: bufs[j]})
							if err != nil {
								b.Fatal(err)
							}
							ps = append(ps, p)
						}
						for _, p := range ps {
							if err := p.Wait(); err != nil {
								b.Fatal(err)
							}
						}
					}
				})
			}
		}
	}
}
