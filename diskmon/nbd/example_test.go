package nbd_test

import (
	"context"
	"log"
	"os/signal"
	"sync/atomic"
	"syscall"

	"github.com/xascript/xascript/diskmon/nbd"
)

// Serving an image as a guest's disk: QEMU attaches with
// -drive file=nbd+unix:///?socket=/run/xa/disk.sock,format=raw,if=virtio
func Example() {
	img, err := nbd.OpenFile("disk.img", false)
	if err != nil {
		log.Fatal(err)
	}
	defer img.Close() // after srv.Close: the server does not own the backend
	changes := make(chan [2]uint64, 4096)
	var lost atomic.Bool // the tracker rescans when it finds this set
	srv := nbd.NewServer(img, nbd.Options{
		OnChange: func(op nbd.Op, off, length uint64) {
			if op == nbd.OpFlush {
				return
			}
			select { // never block the guest's disk
			case changes <- [2]uint64{off, length}:
			default:
				lost.Store(true)
			}
		},
		Logf: log.Printf,
	})
	l, err := nbd.ListenUnix("/run/xa/disk.sock")
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := srv.Serve(ctx, l); err != nil { // returns after draining and syncing
		log.Print(err)
	}
	srv.Close()
}
