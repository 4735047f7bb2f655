package vfs

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"unsafe"
)

// DirectAlign is the alignment OpenDirect's files take: every write's
// offset, length and buffer address must be a multiple of it. 4 KiB is the
// logical block size of today's disks, and a multiple of the 512-byte
// sectors of older ones.
const DirectAlign = 4096

// ErrDirectUnsupported is returned by OpenDirect where the filesystem
// cannot open a file for direct I/O; callers then use OpenFile.
var ErrDirectUnsupported = errors.New("vfs: direct I/O unsupported")

// OpenDirect opens name with O_DIRECT: writes go from the caller's buffer
// to the device, not through the page cache, so they cost no copy and no
// page allocation, and leave no dirty pages for writeback to interleave
// with the caller's own fsyncs. They are not durable until Sync or
// Datasync, as any write. Every write must be aligned (DirectAlign; see
// AlignedBuffer); a misaligned one fails with EINVAL. Filesystems other
// than the operating system's (tests), and those that refuse O_DIRECT
// (tmpfs on older kernels), return ErrDirectUnsupported.
func OpenDirect(fs FS, name string, flag int, perm os.FileMode) (File, error) {
	if _, ok := fs.(osFS); !ok {
		return nil, ErrDirectUnsupported
	}
	f, err := os.OpenFile(name, flag|syscall.O_DIRECT, perm)
	if err != nil {
		if errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.EOPNOTSUPP) {
			return nil, fmt.Errorf("%w: %w", ErrDirectUnsupported, err)
		}
		return nil, err
	}
	return osFile{f}, nil
}

// AlignedBuffer returns n bytes (n a multiple of DirectAlign) whose first
// byte's address is a multiple of DirectAlign, as direct writes need.
func AlignedBuffer(n int) []byte {
	raw := make([]byte, n+DirectAlign)
	skip := (DirectAlign - int(uintptr(unsafe.Pointer(&raw[0]))%DirectAlign)) % DirectAlign
	return raw[skip : skip+n : skip+n]
}

// ReadAligned reads [off, off+n) of d, a file opened with OpenDirect, in
// whole aligned blocks into scratch, an aligned buffer (AlignedBuffer)
// with room for n+2*DirectAlign bytes, and returns the part of scratch
// that holds the range. A file that ends before off+n is an error
// (io.ErrUnexpectedEOF).
func ReadAligned(d File, scratch []byte, off int64, n int) ([]byte, error) {
	from := off &^ (DirectAlign - 1)
	lead := int(off - from)
	length := (lead + n + DirectAlign - 1) &^ (DirectAlign - 1)
	if len(scratch) < length {
		return nil, fmt.Errorf("vfs: aligned read of %d bytes into a %d-byte buffer", n, len(scratch))
	}
	got, err := d.ReadAt(scratch[:length], from)
	if got < lead+n {
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return scratch[lead : lead+n : lead+n], nil
}
