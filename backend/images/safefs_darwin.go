package images

import "errors"

// errNoMknodat: darwin has no mknodat; a fifo in an archive fails its load there.
var errNoMknodat = errors.New("mknodat is not available on darwin")

// openBeneath opens directory rel below rootfd with the portable O_NOFOLLOW component walk.
func openBeneath(rootfd int, rel string) (int, error) {
	return walkBeneath(rootfd, rel, false)
}

func mknodAt(dirfd int, name string, mode uint32, dev uint64) error { return errNoMknodat }
