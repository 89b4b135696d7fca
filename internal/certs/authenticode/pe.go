package authenticode

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// PE layout constants from the Microsoft PE/COFF specification.
const (
	dosHeaderSize        = 64
	peOffsetField        = 0x3c
	maxPEHeaderOffset    = 1 << 24 // e_lfanew beyond 16 MiB is not a real image
	coffHeaderSize       = 20
	magicPE32            = 0x10b
	magicPE32Plus        = 0x20b
	checksumField        = 64 // offset of CheckSum in both optional header forms
	securityDirIndex     = 4  // IMAGE_DIRECTORY_ENTRY_SECURITY
	dataDirectorySize    = 8
	winCertHeaderSize    = 8
	winCertTypePKCS7     = 0x0002 // WIN_CERT_TYPE_PKCS_SIGNED_DATA
	certTableAlignment   = 8
	maxCertificateTable  = 8 << 20 // bytes; real tables are kilobytes, a few nested signatures stay far below
	maxCertificateEntry  = maxCertificateTable
	maxCertificateChunks = 64 // entries in one table
)

// layout is where the fields that Authenticode leaves out of the image hash
// lie in one file.
type layout struct {
	size           int64
	checksumOffset int64
	dirEntryOffset int64 // the security data directory entry; -1 when the header has none
	certStart      int64 // file offset of the certificate table; 0 when unsigned
	certSize       int64
}

// readLayout parses just enough of the DOS, COFF and optional headers to
// find the checksum, the security directory entry and the certificate
// table. It reads a few hundred bytes whatever the file size, and rejects
// every offset that points outside the file.
func readLayout(r io.ReaderAt, size int64) (layout, error) {
	l := layout{size: size, dirEntryOffset: -1}
	if size < dosHeaderSize {
		return l, fmt.Errorf("%w: %d bytes is shorter than a DOS header", ErrNotPE, size)
	}
	var dos [dosHeaderSize]byte
	if _, err := r.ReadAt(dos[:], 0); err != nil {
		return l, fmt.Errorf("read DOS header: %w", err)
	}
	if dos[0] != 'M' || dos[1] != 'Z' {
		return l, fmt.Errorf("%w: no MZ signature", ErrNotPE)
	}
	peOffset := int64(binary.LittleEndian.Uint32(dos[peOffsetField:]))
	if peOffset > maxPEHeaderOffset || peOffset+4+coffHeaderSize+2 > size {
		return l, fmt.Errorf("%w: PE header offset %#x outside the file", ErrNotPE, peOffset)
	}
	var head [4 + coffHeaderSize + 2]byte
	if _, err := r.ReadAt(head[:], peOffset); err != nil {
		return l, fmt.Errorf("read PE header: %w", err)
	}
	if string(head[:4]) != "PE\x00\x00" {
		return l, fmt.Errorf("%w: no PE signature at %#x", ErrNotPE, peOffset)
	}
	optSize := int64(binary.LittleEndian.Uint16(head[4+16:]))
	optStart := peOffset + 4 + coffHeaderSize
	if optStart+optSize > size {
		return l, fmt.Errorf("%w: optional header runs past the end of the file", ErrMalformed)
	}
	var countField, dirsStart int64
	switch magic := binary.LittleEndian.Uint16(head[4+coffHeaderSize:]); magic {
	case magicPE32:
		countField, dirsStart = 92, 96
	case magicPE32Plus:
		countField, dirsStart = 108, 112
	default:
		return l, fmt.Errorf("%w: optional header magic %#x is neither PE32 nor PE32+", ErrNotPE, magic)
	}
	if optSize < countField+4 {
		return l, fmt.Errorf("%w: optional header of %d bytes is too short", ErrMalformed, optSize)
	}
	l.checksumOffset = optStart + checksumField
	var field [4]byte
	if _, err := r.ReadAt(field[:], optStart+countField); err != nil {
		return l, fmt.Errorf("read optional header: %w", err)
	}
	dirCount := int64(binary.LittleEndian.Uint32(field[:]))
	entry := dirsStart + securityDirIndex*dataDirectorySize
	// A header that declares no security directory, or is too short to hold
	// one, carries no signature; its image hash would not skip an entry.
	if dirCount <= securityDirIndex || entry+dataDirectorySize > optSize {
		return l, nil
	}
	l.dirEntryOffset = optStart + entry
	var dir [dataDirectorySize]byte
	if _, err := r.ReadAt(dir[:], l.dirEntryOffset); err != nil {
		return l, fmt.Errorf("read security directory: %w", err)
	}
	start := int64(binary.LittleEndian.Uint32(dir[0:]))
	length := int64(binary.LittleEndian.Uint32(dir[4:]))
	if start == 0 || length == 0 {
		return l, nil // unsigned
	}
	headersEnd := optStart + optSize
	switch {
	case start < headersEnd:
		return l, fmt.Errorf("%w: certificate table at %#x overlaps the headers", ErrMalformed, start)
	case start >= size:
		return l, fmt.Errorf("%w: certificate table at %#x starts past the end of the file (%d bytes); the file is truncated", ErrMalformed, start, size)
	case start+length > size:
		return l, fmt.Errorf("%w: certificate table of %d bytes at %#x runs past the end of the file (%d bytes); the file is truncated", ErrMalformed, length, start, size)
	case length > maxCertificateTable:
		return l, fmt.Errorf("%w: certificate table of %d bytes exceeds the %d-byte limit", ErrMalformed, length, maxCertificateTable)
	}
	l.certStart, l.certSize = start, length
	return l, nil
}

// entry is one WIN_CERTIFICATE of the certificate table.
type entry struct {
	index    int
	offset   int64 // of the WIN_CERTIFICATE header
	revision uint16
	certType uint16
	content  []byte // bCertificate: the declared length less the header
}

// readEntries walks the certificate table. The declared dwLength includes
// the 8-byte header and may or may not include padding; the next entry
// starts at the declared length rounded up to 8. The padding of the last
// entry may be missing (the table then ends unaligned), and zero bytes left
// after the last entry are padding too. Anything else that does not fit is
// a truncated or corrupt table.
func readEntries(r io.ReaderAt, l layout) ([]entry, error) {
	var entries []entry
	end := l.certStart + l.certSize
	for offset := l.certStart; offset < end; {
		remaining := end - offset
		if remaining < winCertHeaderSize {
			if err := requireZero(r, offset, remaining); err != nil {
				return nil, fmt.Errorf("%w: %d stray bytes after certificate table entry %d", ErrMalformed, remaining, len(entries))
			}
			break
		}
		var header [winCertHeaderSize]byte
		if _, err := r.ReadAt(header[:], offset); err != nil {
			return nil, fmt.Errorf("read certificate table entry %d: %w", len(entries), err)
		}
		length := int64(binary.LittleEndian.Uint32(header[0:]))
		if length == 0 && len(entries) > 0 {
			if err := requireZero(r, offset, remaining); err != nil {
				return nil, fmt.Errorf("%w: certificate table entry %d has length 0", ErrMalformed, len(entries))
			}
			break
		}
		if length > remaining && length-remaining < certTableAlignment {
			// The declared length counts padding that the table's own
			// size leaves out; the PKCS#7 parser will tell if anything
			// real is missing.
			length = remaining
		}
		switch {
		case length < winCertHeaderSize:
			return nil, fmt.Errorf("%w: certificate table entry %d declares %d bytes, less than its own header", ErrMalformed, len(entries), length)
		case length > remaining:
			return nil, fmt.Errorf("%w: certificate table entry %d declares %d bytes but only %d remain in the table; the table is truncated", ErrMalformed, len(entries), length, remaining)
		case length > maxCertificateEntry:
			return nil, fmt.Errorf("%w: certificate table entry %d of %d bytes exceeds the limit", ErrMalformed, len(entries), length)
		case len(entries) == maxCertificateChunks:
			return nil, fmt.Errorf("%w: more than %d certificate table entries", ErrMalformed, maxCertificateChunks)
		}
		content := make([]byte, length-winCertHeaderSize)
		if _, err := r.ReadAt(content, offset+winCertHeaderSize); err != nil {
			return nil, fmt.Errorf("read certificate table entry %d: %w", len(entries), err)
		}
		entries = append(entries, entry{
			index:    len(entries),
			offset:   offset,
			revision: binary.LittleEndian.Uint16(header[4:]),
			certType: binary.LittleEndian.Uint16(header[6:]),
			content:  content,
		})
		offset += (length + certTableAlignment - 1) / certTableAlignment * certTableAlignment
	}
	return entries, nil
}

// requireZero checks that n bytes at offset are all zero, in small reads.
func requireZero(r io.ReaderAt, offset, n int64) error {
	var buf [4096]byte
	for n > 0 {
		chunk := min(n, int64(len(buf)))
		if _, err := r.ReadAt(buf[:chunk], offset); err != nil {
			return err
		}
		for _, b := range buf[:chunk] {
			if b != 0 {
				return errors.New("non-zero byte")
			}
		}
		offset += chunk
		n -= chunk
	}
	return nil
}
