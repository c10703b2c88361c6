package images

import (
	"errors"

	"golang.org/x/sys/unix"
)

// errNoMknodat: darwin has no mknodat; device nodes and fifos are recorded instead of created.
var errNoMknodat = errors.New("mknodat is not available on darwin")

// openBeneath opens directory rel below rootfd with the portable O_NOFOLLOW component walk.
func openBeneath(rootfd int, rel string) (int, error) {
	return walkBeneath(rootfd, rel, false)
}

func mknodAt(dirfd int, name string, mode uint32, dev uint64) error { return errNoMknodat }

// syncTree flushes file data to disk; darwin has no syncfs, so sync everything.
func syncTree(dirfd int) error {
	unix.Sync()
	return nil
}
