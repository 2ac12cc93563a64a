package providers

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// errDebUnreadable means the .deb's control member is compressed with
// something the standard library cannot read (xz, zstd).
var errDebUnreadable = errors.New("control member compressed with xz or zstd")

// debControl reads the Package and Version fields of a .deb (an ar
// archive whose control.tar[.gz] member holds ./control). It returns
// errDebUnreadable for control.tar.xz / control.tar.zst.
func debControl(r io.Reader) (name, version string, err error) {
	br := bufio.NewReader(r)
	magic := make([]byte, 8)
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != "!<arch>\n" {
		return "", "", fmt.Errorf("not a .deb file (no ar header)")
	}
	hdr := make([]byte, 60)
	for {
		if _, err := io.ReadFull(br, hdr); err != nil {
			return "", "", fmt.Errorf("not a .deb file: no control member")
		}
		member := strings.TrimSuffix(strings.TrimSpace(string(hdr[0:16])), "/")
		size, err := strconv.ParseInt(strings.TrimSpace(string(hdr[48:58])), 10, 64)
		if err != nil || size < 0 {
			return "", "", fmt.Errorf("not a .deb file: bad ar member size")
		}
		body := io.LimitReader(br, size)
		switch member {
		case "control.tar", "control.tar.gz":
			var tr io.Reader = body
			if member == "control.tar.gz" {
				gz, err := gzip.NewReader(body)
				if err != nil {
					return "", "", fmt.Errorf("control.tar.gz: %w", err)
				}
				defer gz.Close()
				tr = gz
			}
			return controlFields(tar.NewReader(tr))
		case "control.tar.xz", "control.tar.zst":
			return "", "", errDebUnreadable
		}
		if _, err := io.Copy(io.Discard, body); err != nil {
			return "", "", err
		}
		if size%2 == 1 {
			if _, err := br.ReadByte(); err != nil {
				return "", "", fmt.Errorf("not a .deb file: truncated")
			}
		}
	}
}

func controlFields(tr *tar.Reader) (name, version string, err error) {
	for {
		h, err := tr.Next()
		if err != nil {
			return "", "", fmt.Errorf("control archive has no control file")
		}
		if strings.TrimPrefix(h.Name, "./") != "control" {
			continue
		}
		b, err := io.ReadAll(io.LimitReader(tr, 1<<20))
		if err != nil {
			return "", "", err
		}
		for _, l := range bytes.Split(b, []byte("\n")) {
			k, v, ok := strings.Cut(string(l), ":")
			if !ok || strings.HasPrefix(k, " ") {
				continue
			}
			switch k {
			case "Package":
				name = strings.TrimSpace(v)
			case "Version":
				version = strings.TrimSpace(v)
			}
		}
		if name == "" || version == "" {
			return "", "", fmt.Errorf("control file lacks Package or Version")
		}
		return name, version, nil
	}
}
