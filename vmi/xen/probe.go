package xen

import (
	"fmt"

	"github.com/xascript/xascript/vmi"
)

// An auto-translated (PVH or HVM) guest's frames run from 0 to
// XENMEM_maximum_gpfn, but most of that span can be empty: a 128 MiB PVH
// guest has its special pages just below 4 GiB, so the span is 4 GiB with
// 3.9 GiB of nothing. Xen offers dom0 no way to read another domain's
// memory map, so it is probed: Xen answers a batch mapping frame by frame,
// and a frame that is not populated fails to map. One frame per region
// finds where memory is; the regions where presence changes are then
// probed frame by frame to find the edges exactly.
const (
	probeRegionFrames = 512   // 2 MiB
	maxProbeRegions   = 16384 // regions grow for bigger spans
	probeBatch        = 1024  // frames per mapping call
	maxEdgeRegions    = 64    // regions probed frame by frame
	// maxEdgeRegionFrames bounds the work of frame-by-frame probing: a span
	// so large that regions grew past it (over 64 GiB: a guest can place a
	// frame high to stretch maximum_gpfn) is mapped region by region only.
	maxEdgeRegionFrames = 2048
)

// probeMemoryMap returns the populated guest frames of [0, maxGpfn] as
// ranges.
func probeMemoryMap(hv hypervisor, domain uint16, maxGpfn uint64) ([]vmi.Range, error) {
	n := maxGpfn + 1
	region := uint64(probeRegionFrames)
	for (n+region-1)/region > maxProbeRegions {
		region *= 2
	}
	nreg := (n + region - 1) / region
	firsts := make([]uint64, nreg)
	for i := range firsts {
		firsts[i] = uint64(i) * region
	}
	present, err := probeFrames(hv, domain, firsts)
	if err != nil {
		return nil, err
	}
	// A region is probed frame by frame where presence changes at its
	// start or end (and the first, which holds the legacy hole on HVM);
	// the others are taken whole or not at all.
	edge := make([]bool, nreg)
	edges := 0
	for i := range nreg {
		e := i == 0 || present[i] != present[i-1] || (i+1 < nreg && present[i] != present[i+1]) || i == nreg-1
		if e && edges < maxEdgeRegions && region <= maxEdgeRegionFrames {
			edge[i] = true
			edges++
		}
	}
	var frames []uint64 // populated frames of edge regions, in order
	var rs []vmi.Range
	add := func(start, end uint64) { // frames [start, end)
		if k := len(rs); k > 0 && rs[k-1].End == start*pageSize {
			rs[k-1].End = end * pageSize
			return
		}
		rs = append(rs, vmi.Range{Start: start * pageSize, End: end * pageSize})
	}
	for i := range nreg {
		start, end := uint64(i)*region, min(uint64(i+1)*region, n)
		if !edge[i] {
			if present[i] {
				add(start, end)
			}
			continue
		}
		frames = frames[:0]
		for f := start; f < end; f++ {
			frames = append(frames, f)
		}
		ok, err := probeFrames(hv, domain, frames)
		if err != nil {
			return nil, err
		}
		for j, p := range ok {
			if p {
				add(frames[j], frames[j]+1)
			}
		}
	}
	return rs, nil
}

// probeFrames tells which frames Xen will map, in batches.
func probeFrames(hv hypervisor, domain uint16, frames []uint64) ([]bool, error) {
	out := make([]bool, 0, len(frames))
	for len(frames) > 0 {
		b := frames[:min(len(frames), probeBatch)]
		frames = frames[len(b):]
		mem, errs, err := hv.MapFrames(domain, b, false)
		if err != nil {
			return nil, fmt.Errorf("probe memory of domain %d at frame %#x: %w", domain, b[0], err)
		}
		for _, e := range errs {
			out = append(out, e == 0)
		}
		if err := hv.Unmap(mem); err != nil {
			return nil, err
		}
	}
	return out, nil
}
