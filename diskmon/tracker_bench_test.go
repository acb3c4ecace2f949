package diskmon

import (
	"strconv"
	"testing"
	"time"
)

// BenchmarkRescanFig7 is one run of the paper's Figure 7 as a recursive
// watch on /root/fig7 sees it: a rescan that finds a new folder of 1,000
// files, then one that finds it gone (2,001 events each way). The view is
// the in-memory fake, so this measures the tracker's own work (walk,
// diff, order), not the file system's reads (diskmon/ext4's
// BenchmarkStatFolder1k).
func BenchmarkRescanFig7(b *testing.B) {
	f := newFakeFS()
	f.mkdir("/root")
	f.mkdir("/root/fig7")
	tr := NewTracker(f, nil, TrackerOptions{})
	events := 0
	if _, err := tr.Watch("/root/fig7", WatchOptions{Recursive: true}, func(Event) { events++ }); err != nil {
		b.Fatal(err)
	}
	const files = 1000
	names := make([]string, files)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		dir := "/root/fig7/n1000-r" + strconv.Itoa(i)
		f.mkdir(dir)
		for k := range names {
			names[k] = dir + "/f" + strconv.Itoa(k)
			f.touch(names[k])
		}
		b.StartTimer()
		tr.Rescan(time.Now())
		b.StopTimer()
		// Remove from the end: the fake's unlink is a linear search.
		for k := files - 1; k >= 0; k-- {
			f.rm(names[k])
		}
		f.rm(dir)
		b.StartTimer()
		tr.Rescan(time.Now())
	}
	if want := b.N * 2 * (files + 1); events != want {
		b.Fatalf("%d events, want %d", events, want)
	}
}
