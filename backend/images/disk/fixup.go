package disk

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"

	"github.com/Microsoft/hcsshim/ext4/tar2ext4"
)

// padInodeBitmaps sets the bits past the last inode of each group's inode bitmap, as mke2fs does
// and e2fsck (1.47) requires: tar2ext4 (hcsshim v0.14/v0.15) leaves them clear, so `e2fsck -fn`
// reports "Padding at end of inode bitmap is not set" on every image it makes (upstream fix:
// microsoft/hcsshim#2811). The kernel never reads those bits, but a disk that fscks clean is one a
// failing check can be trusted on.
func padInodeBitmaps(f *os.File) error {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	sb, err := tar2ext4.ReadExt4SuperBlockReadSeeker(f)
	if err != nil {
		return err
	}
	blockSize := int64(1024) << sb.LogBlockSize
	if sb.BlocksPerGroup == 0 || sb.InodesPerGroup == 0 || int64(sb.InodesPerGroup) > blockSize*8 {
		return fmt.Errorf("unexpected ext4 geometry: %d blocks and %d inodes per group", sb.BlocksPerGroup, sb.InodesPerGroup)
	}
	groups := (int64(sb.BlocksCountLow) - int64(sb.FirstDataBlock) + int64(sb.BlocksPerGroup) - 1) / int64(sb.BlocksPerGroup)
	const descSize = 32 // tar2ext4 writes the small (32-byte) group descriptors
	gdt := make([]byte, groups*descSize)
	if _, err := f.ReadAt(gdt, blockSize*int64(sb.FirstDataBlock+1)); err != nil {
		return fmt.Errorf("reading group descriptors: %w", err)
	}
	bm := make([]byte, blockSize)
	for g := int64(0); g < groups; g++ {
		at := int64(binary.LittleEndian.Uint32(gdt[g*descSize+4:])) * blockSize // bg_inode_bitmap_lo
		if _, err := f.ReadAt(bm, at); err != nil {
			return fmt.Errorf("reading the inode bitmap of group %d: %w", g, err)
		}
		for i := int64(sb.InodesPerGroup); i < blockSize*8; i++ {
			bm[i/8] |= 1 << (i % 8)
		}
		if _, err := f.WriteAt(bm, at); err != nil {
			return err
		}
	}
	return nil
}
