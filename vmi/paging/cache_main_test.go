package paging

import (
	"testing"

	"github.com/xascript/xascript/internal/testcache"
)

// TestMain gives this test process a cache of its own (internal/testcache).
func TestMain(m *testing.M) { testcache.Main(m) }
