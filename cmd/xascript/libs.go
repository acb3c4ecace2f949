package main

import (
	"errors"
	"fmt"
	"os"
)

// requirePath is where require looks after the script's own folder: each
// --lib folder in the order given, then each $XASCRIPT_PATH folder
// (searchPath). Every command that builds a runtime passes it as
// runtime.Config.SearchPath.
func requirePath(libs []string) []string {
	return append(append([]string(nil), libs...), searchPath()...)
}

// checkLibs makes a --lib that is not a folder a usage error: a typo would
// otherwise show only as a module not found. $XASCRIPT_PATH may list
// folders that do not exist, as PATH may.
func checkLibs(libs []string) error {
	for _, d := range libs {
		st, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("--lib %s: %w", d, errors.Unwrap(err))
		}
		if !st.IsDir() {
			return fmt.Errorf("--lib %s: not a folder", d)
		}
	}
	return nil
}
