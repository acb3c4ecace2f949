package qmpbitmap

import (
	"encoding/json"
	"fmt"
	"strings"
)

// QMP runs one QMP command and returns its "return" value. vmi/qemu's
// Client implements it; it must be safe for use by one goroutine at a time
// (the Source never calls it concurrently).
type QMP interface {
	Execute(cmd string, args any) (json.RawMessage, error)
}

// countedQMP counts the commands it runs, for the poll's log line: each
// one is a round trip into QEMU's main loop, which a TCG guest needs too.
type countedQMP struct {
	QMP
	calls int
}

func (c *countedQMP) Execute(cmd string, args any) (json.RawMessage, error) {
	c.calls++
	return c.QMP.Execute(cmd, args)
}

// blockInfo is the part of query-block's BlockInfo this package reads.
type blockInfo struct {
	Device   string    `json:"device"`
	QDev     string    `json:"qdev"`
	Inserted *nodeInfo `json:"inserted"`
}

// nodeInfo is a BlockDeviceInfo (query-block's "inserted", an element of
// query-named-block-nodes).
type nodeInfo struct {
	NodeName string `json:"node-name"`
	Drv      string `json:"drv"`
	RO       bool   `json:"ro"`
	Image    struct {
		VirtualSize int64 `json:"virtual-size"`
	} `json:"image"`
	DirtyBitmaps []bitmapInfo `json:"dirty-bitmaps"`
}

type bitmapInfo struct {
	Name      string `json:"name"`
	Recording bool   `json:"recording"`
	Busy      bool   `json:"busy"`
	Count     uint64 `json:"count"`
}

type exportInfo struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	NodeName string `json:"node-name"`
	Shutdown bool   `json:"shutting-down"`
}

type blockStats struct {
	Device   string `json:"device"`
	QDev     string `json:"qdev"`
	NodeName string `json:"node-name"`
	Stats    struct {
		FlushOps uint64 `json:"flush_operations"`
		WrOps    uint64 `json:"wr_operations"`
	} `json:"stats"`
}

// call runs cmd and decodes its reply into out (when out is not nil).
func call(q QMP, cmd string, args any, out any) error {
	raw, err := q.Execute(cmd, args)
	if err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("qmp %s: reply: %w", cmd, err)
	}
	return nil
}

// drive is what Open found for the user's --drive.
type drive struct {
	node   string // the top (format) node: what the guest's writes go through
	device string // the BlockBackend's name, "" for a -blockdev/-device drive
	qdev   string
	size   int64
}

// findDrive resolves name against query-block: a drive id (-drive id=),
// a device's qdev id or path, or the node name of the drive's top node; and
// failing those, any node name from query-named-block-nodes (a node below a
// format driver sees the guest's writes too, in its own offsets).
func findDrive(q QMP, name string) (drive, error) {
	var blocks []blockInfo
	if err := call(q, "query-block", nil, &blocks); err != nil {
		return drive{}, err
	}
	var names []string
	for _, b := range blocks {
		if b.Inserted == nil {
			continue
		}
		names = append(names, b.Device+b.QDev)
		if name == b.Device || name == b.QDev || name == b.Inserted.NodeName || (b.QDev != "" && qdevID(b.QDev) == name) {
			return drive{node: b.Inserted.NodeName, device: b.Device, qdev: b.QDev, size: b.Inserted.Image.VirtualSize}, nil
		}
	}
	var nodes []nodeInfo
	if err := call(q, "query-named-block-nodes", map[string]any{"flat": true}, &nodes); err != nil {
		return drive{}, err
	}
	for _, n := range nodes {
		if n.NodeName == name {
			return drive{node: n.NodeName, size: n.Image.VirtualSize}, nil
		}
	}
	return drive{}, fmt.Errorf("no drive or node named %q in QEMU (query-block has %s)", name, strings.Join(names, ", "))
}

// qdevID is the device id in a qdev path such as
// /machine/peripheral/virtio0/virtio-backend.
func qdevID(path string) string {
	const p = "/machine/peripheral/"
	if !strings.HasPrefix(path, p) {
		return ""
	}
	id, _, _ := strings.Cut(path[len(p):], "/")
	return id
}
