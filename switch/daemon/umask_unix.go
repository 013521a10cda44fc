//go:build unix

package daemon

import "syscall"

// privateUmask makes every file switchd creates 0600 and every directory
// 0700, whoever creates it: the node's own files already ask for those
// modes, but Pebble (vault/, journal/, tokensvc/: WAL, MANIFEST, OPTIONS,
// sstables, LOCK, markers) creates its directories 0755 and files 0666
// through its vfs, which a umask of 022 leaves readable by every user of
// the machine. The umask was chosen over wrapping Pebble's vfs.Default
// because it covers every path a file can be created by (Create,
// OpenReadWrite with O_CREATE, ReuseForWrite, MkdirAll, and whatever a
// later Pebble adds) in every store, with nothing to keep in step.
const privateUmask = 0o077

// restrictFileModes sets the process umask to privateUmask.
func restrictFileModes() { syscall.Umask(privateUmask) }
