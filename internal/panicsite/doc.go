// Package panicsite names where a recovered panic happened: the innermost
// frame of this module below runtime.gopanic, as a package path and
// file:line. The CLI's panic firewall and the Lua bindings' wrapper use it
// so that a bug hit on hostile input is reported as one line a user can
// paste into an issue, not a Go stack trace nor a bare "nil pointer
// dereference".
package panicsite
