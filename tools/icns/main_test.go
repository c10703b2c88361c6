package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

// readICNS parses an .icns file into its entries' types and decoded images.
func readICNS(t *testing.T, data []byte) (types []string, imgs []image.Image) {
	t.Helper()
	if len(data) < 8 || string(data[:4]) != "icns" || int(binary.BigEndian.Uint32(data[4:8])) != len(data) {
		t.Fatalf("bad icns header: % x", data[:min(8, len(data))])
	}
	for off := 8; off < len(data); {
		if off+8 > len(data) {
			t.Fatalf("truncated entry at %d", off)
		}
		n := int(binary.BigEndian.Uint32(data[off+4 : off+8]))
		if n < 8 || off+n > len(data) {
			t.Fatalf("entry %q at %d: length %d", data[off:off+4], off, n)
		}
		img, err := png.Decode(bytes.NewReader(data[off+8 : off+n]))
		if err != nil {
			t.Fatalf("entry %q: %v", data[off:off+4], err)
		}
		types = append(types, string(data[off:off+4]))
		imgs = append(imgs, img)
		off += n
	}
	return types, imgs
}

func TestWriteRoundTrip(t *testing.T) {
	// Left half opaque red, right half transparent: scaling keeps both.
	src := image.NewNRGBA(image.Rect(0, 0, 1024, 1024))
	for y := 0; y < 1024; y++ {
		for x := 0; x < 512; x++ {
			src.SetNRGBA(x, y, color.NRGBA{R: 255, A: 255})
		}
	}
	var buf bytes.Buffer
	if err := Write(&buf, src); err != nil {
		t.Fatal(err)
	}
	types, imgs := readICNS(t, buf.Bytes())
	if len(types) != len(iconTypes) {
		t.Fatalf("entries %v, want %d", types, len(iconTypes))
	}
	for i, it := range iconTypes {
		if types[i] != it.typ || imgs[i].Bounds().Dx() != it.size || imgs[i].Bounds().Dy() != it.size {
			t.Errorf("entry %d: %s %v, want %s %d", i, types[i], imgs[i].Bounds(), it.typ, it.size)
		}
		left := color.NRGBAModel.Convert(imgs[i].At(0, it.size/2)).(color.NRGBA)
		right := color.NRGBAModel.Convert(imgs[i].At(it.size-1, it.size/2)).(color.NRGBA)
		if left != (color.NRGBA{R: 255, A: 255}) || right.A != 0 {
			t.Errorf("%s: left %v right %v", it.typ, left, right)
		}
	}

	// A 512 source has no 1024 entry.
	buf.Reset()
	if err := Write(&buf, image.NewNRGBA(image.Rect(0, 0, 512, 512))); err != nil {
		t.Fatal(err)
	}
	if types, _ := readICNS(t, buf.Bytes()); len(types) != len(iconTypes)-1 || types[len(types)-1] != "ic09" {
		t.Errorf("512 source: %v", types)
	}
}

func TestWriteRejects(t *testing.T) {
	for _, r := range []image.Rectangle{image.Rect(0, 0, 1024, 512), image.Rect(0, 0, 256, 256)} {
		if err := Write(&bytes.Buffer{}, image.NewNRGBA(r)); !errors.Is(err, errBadSource) {
			t.Errorf("%v: %v, want errBadSource", r, err)
		}
	}
	// A file that is not a PNG: an error naming it, and no output file.
	dir := t.TempDir()
	in, out := filepath.Join(dir, "icon.png"), filepath.Join(dir, "icon.icns")
	os.WriteFile(in, []byte("not a png"), 0o644)
	if err := convert(in, out); err == nil || !bytes.Contains([]byte(err.Error()), []byte(in)) {
		t.Errorf("convert: %v", err)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("output left behind: %v", err)
	}
}

// TestAppIcon: the committed build/appicon.png converts.
func TestAppIcon(t *testing.T) {
	out := filepath.Join(t.TempDir(), "iconfile.icns")
	if err := convert(filepath.Join("..", "..", "build", "appicon.png"), out); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(out)
	if types, _ := readICNS(t, data); len(types) != len(iconTypes) {
		t.Errorf("entries %v", types)
	}
}
