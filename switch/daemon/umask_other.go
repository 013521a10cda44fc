//go:build !unix

package daemon

// restrictFileModes does nothing where there is no umask; the data
// directory's access control is the operator's.
func restrictFileModes() {}
