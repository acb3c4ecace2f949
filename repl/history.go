package repl

import (
	"fmt"
	"os"
	"path/filepath"
)

// HistoryPath is where the REPL keeps its history: $XDG_STATE_HOME/xascript/
// history, else ~/.local/state/xascript/history (the XDG base directory
// spec's place for state that should persist across restarts but is not
// configuration). "" when neither is known.
func HistoryPath() string {
	if d := os.Getenv("XDG_STATE_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "xascript", "history")
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		return ""
	}
	return filepath.Join(home, ".local", "state", "xascript", "history")
}

// openHistory opens the history file for writing with mode 0600 (it may
// hold addresses and names from a guest under investigation): a file left
// with a wider mode is narrowed. Its folder is made 0700.
func openHistory(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return nil, fmt.Errorf("history: %w", err)
	}
	return f, nil
}
