package disk

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Size bounds of a writable disk (FormatEmpty).
const (
	// MinWritableSize: below it a journal and a useful amount of space do not fit.
	MinWritableSize int64 = 64 << 20
	// MaxWritableSize: 32-bit block numbers of 4 KiB blocks (no 64bit feature) reach 16 TiB; 4 TiB
	// is far above any container's writable layer.
	MaxWritableSize int64 = 4 << 40
)

// ErrBadSize: a writable disk size outside [MinWritableSize, MaxWritableSize].
var ErrBadSize = errors.New("invalid disk size")

// The geometry of an empty ext4 made by FormatEmpty: mke2fs's defaults for a filesystem of this
// size ("ext4" type), minus what needs checksums (metadata_csum, uninit_bg), which a pure-Go writer
// would have to get bit-exact for nothing: the unused inode tables are holes in the host file.
const (
	fmtBlockSize      = 4096
	fmtBlocksPerGroup = 8 * fmtBlockSize // one block bitmap
	fmtInodeSize      = 256
	fmtInodeRatio     = 16 << 10 // bytes per inode, mke2fs's default
	fmtDescSize       = 32       // no 64bit feature: small group descriptors
	fmtFirstIno       = 11
	fmtRootIno        = 2
	fmtJournalIno     = 8
	fmtLostFoundIno   = 11
	fmtLostFoundBlks  = 4 // 16 KiB, as mke2fs makes it, so e2fsck never has to grow it
)

// ext4 feature bits (fs/ext4/ext4.h).
const (
	compatHasJournal   = 0x4
	compatExtAttr      = 0x8
	compatDirIndex     = 0x20
	compatSparseSuper2 = 0x200
	incompatFiletype   = 0x2
	incompatExtents    = 0x40
	incompatFlexBg     = 0x200
	roCompatLargeFile  = 0x2
	roCompatHugeFile   = 0x8
	roCompatDirNlink   = 0x20
	roCompatExtraIsize = 0x40
)

// journalBlocks is mke2fs's default journal size (ext2fs_default_journal_size) for a filesystem of
// n blocks, capped at 64 Ki blocks (256 MiB) so that two extents in the inode cover it.
func journalBlocks(n uint32) uint32 {
	switch {
	case n < 32768:
		return 1024
	case n < 256*1024:
		return 4096
	case n < 512*1024:
		return 8192
	case n < 4096*1024:
		return 16384
	case n < 8192*1024:
		return 32768
	}
	return 65536
}

// FormatEmpty writes an empty, writable ext4 filesystem of size bytes (rounded down to 4 KiB; a
// last 128 MiB block group that would be under 4 MiB is left out) to dst, as `mke2fs -t ext4` would but without it (macOS has none): root directory, lost+found and a
// journal, nothing else. The file is sparse: only the superblock, group descriptors, bitmaps, the
// two directories and the journal's superblock are written, about 40 KiB plus 8 KiB per 128 MiB of
// size; everything else is a hole the guest fills as it writes. Like Build, the file appears
// complete or not at all (a temporary file, synced and renamed). The result passes `e2fsck -fn`.
func FormatEmpty(dst string, size int64) (err error) {
	if size < MinWritableSize || size > MaxWritableSize {
		return fmt.Errorf("formatting %q: %w: %d bytes (want %d MiB to %d TiB)", dst, ErrBadSize, size, MinWritableSize>>20, MaxWritableSize>>40)
	}
	img, err := layoutEmpty(uint32(size/fmtBlockSize), time.Now())
	if err != nil {
		return fmt.Errorf("formatting %q: %w", dst, err)
	}
	f, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp-*")
	if err != nil {
		return fmt.Errorf("formatting %q: %w", dst, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err = f.Truncate(int64(img.blocks) * fmtBlockSize); err != nil {
		return fmt.Errorf("formatting %q: %w", dst, err)
	}
	for _, w := range img.writes {
		if _, err = f.WriteAt(w.data, w.at); err != nil {
			return fmt.Errorf("formatting %q: %w", dst, err)
		}
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("formatting %q: %w", dst, err)
	}
	if err = f.Chmod(0o600); err != nil {
		return fmt.Errorf("formatting %q: %w", dst, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("formatting %q: %w", dst, err)
	}
	if err = os.Rename(tmp, dst); err != nil {
		return fmt.Errorf("formatting %q: %w", dst, err)
	}
	if d, derr := os.Open(filepath.Dir(dst)); derr == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// write is a run of bytes at an offset of the disk; everything not written is zeros (a hole).
type write struct {
	at   int64
	data []byte
}

type emptyFS struct {
	blocks uint32
	writes []write
}

// layoutEmpty lays out an empty filesystem of n blocks. With flex_bg every group's bitmaps and
// inode table may lie anywhere, so they are packed at the start, in this order: superblock (block
// 0), group descriptors, block bitmaps, inode bitmaps, inode tables, root directory, lost+found,
// journal. No backup superblocks (sparse_super2 with no backup groups, as tar2ext4 does).
func layoutEmpty(n uint32, now time.Time) (*emptyFS, error) {
	groups := (n + fmtBlocksPerGroup - 1) / fmtBlocksPerGroup
	// A last group too small for its share of inodes would be all metadata: drop it.
	if last := n - (groups-1)*fmtBlocksPerGroup; groups > 1 && last < 1024 {
		groups--
		n = groups * fmtBlocksPerGroup
	}
	inodes := uint64(n) * fmtBlockSize / fmtInodeRatio
	ipg := uint32((inodes + uint64(groups) - 1) / uint64(groups))
	ipg = (ipg + 15) &^ 15                   // whole inode-table blocks (16 inodes a block)
	ipg = min(ipg, fmtBlockSize*8)           // one inode bitmap block
	itb := ipg * fmtInodeSize / fmtBlockSize // inode table blocks per group
	gdBlocks := (groups*fmtDescSize + fmtBlockSize - 1) / fmtBlockSize
	jblocks := journalBlocks(n)

	next := 1 + gdBlocks
	bbm := next // block bitmap of group g: bbm+g
	next += groups
	ibm := next
	next += groups
	itab := next // inode table of group g: itab+g*itb
	next += groups * itb
	rootBlk := next
	next++
	lfBlk := next
	next += fmtLostFoundBlks
	jBlk := next
	next += jblocks
	used := next // blocks 0..used-1 are metadata, all others free
	if uint64(used)+1024 > uint64(n) {
		return nil, fmt.Errorf("%w: %d blocks leave no room after %d blocks of metadata", ErrBadSize, n, used)
	}

	fs := &emptyFS{blocks: n}
	put := func(blk uint32, off int, data []byte) {
		fs.writes = append(fs.writes, write{at: int64(blk)*fmtBlockSize + int64(off), data: data})
	}

	// Group descriptors and block bitmaps.
	gdt := make([]byte, gdBlocks*fmtBlockSize)
	var freeBlocks uint64
	for g := uint32(0); g < groups; g++ {
		first := g * fmtBlocksPerGroup
		count := min(fmtBlocksPerGroup, n-first)
		bm := make([]byte, fmtBlockSize)
		usedHere := uint32(0)
		if first < used {
			usedHere = min(used-first, count)
		}
		for i := uint32(0); i < usedHere; i++ {
			bm[i/8] |= 1 << (i % 8)
		}
		for i := count; i < fmtBlocksPerGroup; i++ { // padding past the last block
			bm[i/8] |= 1 << (i % 8)
		}
		put(bbm+g, 0, bm)
		free := count - usedHere
		freeBlocks += uint64(free)
		freeInodes, dirs := ipg, uint32(0)
		if g == 0 {
			freeInodes -= fmtFirstIno // inodes 1-10 are reserved, 11 is lost+found
			dirs = 2
		}
		d := gdt[g*fmtDescSize:]
		binary.LittleEndian.PutUint32(d[0:], bbm+g)
		binary.LittleEndian.PutUint32(d[4:], ibm+g)
		binary.LittleEndian.PutUint32(d[8:], itab+g*itb)
		binary.LittleEndian.PutUint16(d[12:], uint16(free))
		binary.LittleEndian.PutUint16(d[14:], uint16(freeInodes))
		binary.LittleEndian.PutUint16(d[16:], uint16(dirs))
	}
	put(1, 0, gdt)

	// Inode bitmaps: group 0 has inodes 1-11 in use; every group pads past its last inode.
	for g := uint32(0); g < groups; g++ {
		bm := make([]byte, fmtBlockSize)
		if g == 0 {
			for i := 0; i < fmtFirstIno; i++ {
				bm[i/8] |= 1 << (i % 8)
			}
		}
		for i := ipg; i < fmtBlockSize*8; i++ {
			bm[i/8] |= 1 << (i % 8)
		}
		put(ibm+g, 0, bm)
	}

	// Inodes: the root, the journal, lost+found (all in group 0's table).
	ts := uint32(now.Unix())
	inodeAt := func(ino uint32) (uint32, int) {
		idx := (ino - 1) % ipg // group 0
		return itab + idx*fmtInodeSize/fmtBlockSize, int(idx*fmtInodeSize) % fmtBlockSize
	}
	var jExtents [][3]uint32
	for b := uint32(0); b < jblocks; b += 32768 {
		jExtents = append(jExtents, [3]uint32{b, min(32768, jblocks-b), jBlk + b})
	}
	root := makeInode(0o040755, 3, fmtBlockSize, ts, [][3]uint32{{0, 1, rootBlk}})
	journal := makeInode(0o100600, 1, uint64(jblocks)*fmtBlockSize, ts, jExtents)
	lf := makeInode(0o040700, 2, fmtLostFoundBlks*fmtBlockSize, ts, [][3]uint32{{0, fmtLostFoundBlks, lfBlk}})
	for _, in := range []struct {
		ino  uint32
		data []byte
	}{{fmtRootIno, root}, {fmtJournalIno, journal}, {fmtLostFoundIno, lf}} {
		blk, off := inodeAt(in.ino)
		put(blk, off, in.data)
	}

	// Directory blocks.
	put(rootBlk, 0, dirBlock([]dirent{{fmtRootIno, "."}, {fmtRootIno, ".."}, {fmtLostFoundIno, "lost+found"}}))
	put(lfBlk, 0, dirBlock([]dirent{{fmtLostFoundIno, "."}, {fmtRootIno, ".."}}))
	for i := uint32(1); i < fmtLostFoundBlks; i++ {
		put(lfBlk+i, 0, dirBlock(nil))
	}

	// Journal superblock (jbd2, big-endian), a clean empty journal.
	var uuid, hashSeed [16]byte
	if _, err := rand.Read(uuid[:]); err != nil {
		return nil, err
	}
	if _, err := rand.Read(hashSeed[:]); err != nil {
		return nil, err
	}
	jsb := make([]byte, 1024)
	be := binary.BigEndian
	be.PutUint32(jsb[0:], 0xC03B3998) // JBD2_MAGIC_NUMBER
	be.PutUint32(jsb[4:], 4)          // JBD2_SUPERBLOCK_V2
	be.PutUint32(jsb[12:], fmtBlockSize)
	be.PutUint32(jsb[16:], jblocks) // s_maxlen
	be.PutUint32(jsb[20:], 1)       // s_first
	be.PutUint32(jsb[24:], 1)       // s_sequence
	copy(jsb[48:], uuid[:])
	be.PutUint32(jsb[64:], 1) // s_nr_users
	put(jBlk, 0, jsb)

	// The superblock.
	sb := make([]byte, 1024)
	le := binary.LittleEndian
	le.PutUint32(sb[0:], ipg*groups)
	le.PutUint32(sb[4:], n)
	le.PutUint32(sb[12:], uint32(freeBlocks))
	le.PutUint32(sb[16:], ipg*groups-fmtFirstIno)
	le.PutUint32(sb[20:], 0) // s_first_data_block
	le.PutUint32(sb[24:], 2) // 1024 << 2
	le.PutUint32(sb[28:], 2)
	le.PutUint32(sb[32:], fmtBlocksPerGroup)
	le.PutUint32(sb[36:], fmtBlocksPerGroup)
	le.PutUint32(sb[40:], ipg)
	le.PutUint32(sb[48:], ts)     // s_wtime
	le.PutUint16(sb[54:], 0xffff) // s_max_mnt_count -1: no count-based checks
	le.PutUint16(sb[56:], 0xEF53)
	le.PutUint16(sb[58:], 1) // clean
	le.PutUint16(sb[60:], 1) // errors: continue
	le.PutUint32(sb[64:], ts)
	le.PutUint32(sb[76:], 1) // dynamic revision
	le.PutUint32(sb[84:], fmtFirstIno)
	le.PutUint16(sb[88:], fmtInodeSize)
	le.PutUint32(sb[92:], compatHasJournal|compatExtAttr|compatDirIndex|compatSparseSuper2)
	le.PutUint32(sb[96:], incompatFiletype|incompatExtents|incompatFlexBg)
	le.PutUint32(sb[100:], roCompatLargeFile|roCompatHugeFile|roCompatDirNlink|roCompatExtraIsize)
	copy(sb[104:], uuid[:])
	le.PutUint32(sb[224:], fmtJournalIno)
	copy(sb[236:], hashSeed[:])
	sb[252] = 1                // s_def_hash_version: half_md4
	sb[253] = 1                // s_jnl_backup_type: EXT3_JNL_BACKUP_BLOCKS
	le.PutUint32(sb[264:], ts) // s_mkfs_time
	copy(sb[268:], journal[40:100])
	le.PutUint32(sb[268+16*4:], uint32(uint64(jblocks)*fmtBlockSize)) // s_jnl_blocks[16]: i_size
	le.PutUint16(sb[348:], 32)                                        // s_min_extra_isize
	le.PutUint16(sb[350:], 32)                                        // s_want_extra_isize
	le.PutUint32(sb[352:], 1)                                         // EXT2_FLAGS_SIGNED_HASH, whatever the CPU
	sb[372] = 4                                                       // s_log_groups_per_flex: 16, mke2fs's default
	put(0, 1024, sb)
	return fs, nil
}

// makeInode returns a 256-byte inode using extents (each {logical, length, physical}, at most 4).
func makeInode(mode uint16, links uint16, size uint64, ts uint32, extents [][3]uint32) []byte {
	b := make([]byte, fmtInodeSize)
	le := binary.LittleEndian
	le.PutUint16(b[0:], mode)
	le.PutUint32(b[4:], uint32(size))
	le.PutUint32(b[8:], ts)
	le.PutUint32(b[12:], ts)
	le.PutUint32(b[16:], ts)
	le.PutUint16(b[26:], links)
	var blocks uint64
	for _, e := range extents {
		blocks += uint64(e[1])
	}
	le.PutUint32(b[28:], uint32(blocks*fmtBlockSize/512))
	le.PutUint32(b[32:], 0x80000) // EXT4_EXTENTS_FL
	// Extent header, then the extents (i_block, 60 bytes).
	le.PutUint16(b[40:], 0xF30A)
	le.PutUint16(b[42:], uint16(len(extents)))
	le.PutUint16(b[44:], 4)
	for i, e := range extents {
		x := b[52+12*i:]
		le.PutUint32(x[0:], e[0])
		le.PutUint16(x[4:], uint16(e[1]))
		le.PutUint32(x[8:], e[2])
	}
	le.PutUint32(b[108:], uint32(size>>32))
	le.PutUint16(b[128:], 32) // i_extra_isize
	le.PutUint32(b[144:], ts) // i_crtime
	return b
}

type dirent struct {
	ino  uint32
	name string
}

// dirBlock is one directory block holding ents (all directories), the last entry spanning the
// rest of the block; no entries: one empty entry spanning it.
func dirBlock(ents []dirent) []byte {
	b := make([]byte, fmtBlockSize)
	le := binary.LittleEndian
	if len(ents) == 0 {
		le.PutUint16(b[4:], fmtBlockSize)
		return b
	}
	off := 0
	for i, e := range ents {
		rec := (8 + len(e.name) + 3) &^ 3
		if i == len(ents)-1 {
			rec = fmtBlockSize - off
		}
		le.PutUint32(b[off:], e.ino)
		le.PutUint16(b[off+4:], uint16(rec))
		b[off+6] = byte(len(e.name))
		b[off+7] = 2 // EXT4_FT_DIR
		copy(b[off+8:], e.name)
		off += rec
	}
	return b
}
