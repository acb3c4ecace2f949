package main

import (
	"context"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// interruptContext returns a context that the first SIGINT (Ctrl-C) or
// SIGTERM cancels, so that sleep() and list walks end the script through
// its normal error path (its output flushed, a guest held by --pause
// resumed). After that first signal the default handling is back: a second
// one kills at once. status gives the exit status for the signal that came,
// the shell's 128+n: 130 for SIGINT, 143 for SIGTERM. stop releases the
// signals.
func interruptContext() (ctx context.Context, status func() int, stop func()) {
	return interruptContextAfter(nil)
}

// beforeCancelLimit bounds the work done on a signal before the context is
// cancelled (a disk monitor's last rescan).
const beforeCancelLimit = 10 * time.Second

// interruptContextAfter is interruptContext that, on the signal, first runs
// before (bounded by beforeCancelLimit; a second signal cuts it short): a
// disk monitor stops its tap there and delivers what the last writes
// revealed, while the event loop still runs. Only then is ctx cancelled;
// the runtime then ends the Lua code that runs (see runtime's doc), after
// the loop has delivered what before queued.
func interruptContextAfter(before func()) (ctx context.Context, status func() int, stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	var mu sync.Mutex
	var got os.Signal
	done := make(chan struct{})
	go func() {
		select {
		case s := <-ch:
			signal.Stop(ch)
			mu.Lock()
			got = s
			mu.Unlock()
			if before != nil {
				finished := make(chan struct{})
				again := make(chan os.Signal, 1)
				signal.Notify(again, os.Interrupt, syscall.SIGTERM)
				go func() { before(); close(finished) }()
				select {
				case <-finished:
				case <-again:
				case <-time.After(beforeCancelLimit):
				}
				signal.Stop(again)
			}
			cancel()
		case <-done:
		}
	}()
	status = func() int {
		mu.Lock()
		defer mu.Unlock()
		if got == syscall.SIGTERM {
			return exitTerminated
		}
		return exitInterrupted
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			signal.Stop(ch)
			close(done)
			cancel()
		})
	}
	return ctx, status, stop
}
