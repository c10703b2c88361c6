// Command icns turns a square PNG (the app icon, build/appicon.png) into a
// macOS icon file (.icns) holding the sizes Finder and the Dock use, each a
// PNG, with the standard library only, so the Mac app's icon is built the
// same way on Linux and macOS:
//
//	go run ./tools/icns -o Skiff.app/Contents/Resources/iconfile.icns build/appicon.png
//
// The format: "icns", the file's length (big-endian uint32), then one entry
// per image: a four-character type, the entry's length including its 8-byte
// header, and the PNG data.
package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"os"
	"path/filepath"
)

// iconTypes are the PNG-carrying entry types, each with its pixel size.
var iconTypes = []struct {
	typ  string
	size int
}{
	{"icp4", 16}, {"icp5", 32}, {"ic11", 32}, {"ic12", 64}, {"ic07", 128},
	{"ic13", 256}, {"ic08", 256}, {"ic14", 512}, {"ic09", 512}, {"ic10", 1024},
}

// minSource is the smallest source accepted: ic09/ic14 need 512 pixels.
const minSource = 512

// errBadSource: the input is not a square PNG of at least minSource pixels.
var errBadSource = errors.New("the icon must be a square PNG of at least 512×512 pixels")

func main() {
	out := flag.String("o", "", "the .icns `FILE` to write")
	flag.Parse()
	if *out == "" || flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: icns -o OUT.icns IN.png")
		os.Exit(2)
	}
	if err := convert(flag.Arg(0), *out); err != nil {
		fmt.Fprintln(os.Stderr, "icns:", err)
		os.Exit(1)
	}
}

func convert(in, out string) error {
	f, err := os.Open(in)
	if err != nil {
		return err
	}
	defer f.Close()
	src, err := png.Decode(f)
	if err != nil {
		return fmt.Errorf("reading %q: %w", in, err)
	}
	var buf bytes.Buffer
	if err := Write(&buf, src); err != nil {
		return fmt.Errorf("converting %q: %w", in, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), ".icns-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(buf.Bytes()); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), out)
}

// Write encodes src as an .icns file with every entry of iconTypes whose
// size is not larger than src.
func Write(w io.Writer, src image.Image) error {
	b := src.Bounds()
	if b.Dx() != b.Dy() || b.Dx() < minSource {
		return fmt.Errorf("%d×%d: %w", b.Dx(), b.Dy(), errBadSource)
	}
	var body bytes.Buffer
	for _, it := range iconTypes {
		if it.size > b.Dx() {
			continue
		}
		var p bytes.Buffer
		if err := png.Encode(&p, scale(src, it.size)); err != nil {
			return err
		}
		body.WriteString(it.typ)
		binary.Write(&body, binary.BigEndian, uint32(8+p.Len()))
		body.Write(p.Bytes())
	}
	var head bytes.Buffer
	head.WriteString("icns")
	binary.Write(&head, binary.BigEndian, uint32(8+body.Len()))
	_, err := w.Write(append(head.Bytes(), body.Bytes()...))
	return err
}

// scale resizes src to size×size by averaging the source pixels each
// destination pixel covers (a box filter: sharp enough for downscaling).
func scale(src image.Image, size int) *image.NRGBA {
	b := src.Bounds()
	n := b.Dx()
	dst := image.NewNRGBA(image.Rect(0, 0, size, size))
	for y := 0; y < size; y++ {
		y0, y1 := b.Min.Y+y*n/size, b.Min.Y+(y+1)*n/size
		for x := 0; x < size; x++ {
			x0, x1 := b.Min.X+x*n/size, b.Min.X+(x+1)*n/size
			var r, g, bl, a, cnt uint64
			for sy := y0; sy < y1; sy++ {
				for sx := x0; sx < x1; sx++ {
					c := color.NRGBA64Model.Convert(src.At(sx, sy)).(color.NRGBA64)
					// Weight colour by alpha so transparent pixels do not darken edges.
					r += uint64(c.R) * uint64(c.A)
					g += uint64(c.G) * uint64(c.A)
					bl += uint64(c.B) * uint64(c.A)
					a += uint64(c.A)
					cnt++
				}
			}
			if a == 0 {
				continue
			}
			dst.SetNRGBA(x, y, color.NRGBA{
				R: uint8(r / a >> 8), G: uint8(g / a >> 8), B: uint8(bl / a >> 8), A: uint8(a / cnt >> 8),
			})
		}
	}
	return dst
}
