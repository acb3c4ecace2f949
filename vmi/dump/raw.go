package dump

// parseRaw maps a raw physical image: file offset = guest-physical address,
// one range [0, size). Holes (the PCI hole) are whatever the dumper wrote
// there, usually zeros; a raw image cannot say which pages were RAM. It
// carries no CPU state, so the page-table root must come from the profile.
func parseRaw(name string, data []byte) (*Dump, error) {
	return newDump(name, "raw image", data, []segment{{start: 0, end: uint64(len(data)), off: 0, fileLen: uint64(len(data))}})
}
