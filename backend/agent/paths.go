package agent

// Guest paths (VM mode).
const (
	// vmRoot is where the container rootfs share is mounted.
	vmRoot = "/run/skiff/root"
	// sharesDir holds one mount per virtiofs share tag.
	sharesDir = "/run/skiff/shares"
)
