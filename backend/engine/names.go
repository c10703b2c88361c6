package engine

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
)

// NewID returns a random 64-hex-digit container ID whose short form is not all digits (Docker avoids
// those so a short ID never parses as a number).
func NewID() string {
	for {
		var b [32]byte
		if _, err := rand.Read(b[:]); err != nil {
			panic(fmt.Sprintf("crypto/rand: %v", err))
		}
		id := hex.EncodeToString(b[:])
		for _, r := range id[:12] {
			if r >= 'a' {
				return id
			}
		}
	}
}

// ShortID is the first 12 characters of an ID.
func ShortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

var (
	nameLeft = []string{"admiring", "bold", "brave", "calm", "clever", "cool", "dreamy", "eager",
		"elegant", "festive", "focused", "gallant", "gentle", "happy", "jolly", "keen", "kind", "lucid",
		"modest", "nifty", "quirky", "serene", "sharp", "stoic", "sweet", "tender", "vibrant", "wizardly",
		"youthful", "zealous"}
	nameRight = []string{"albatross", "beacon", "breeze", "canoe", "compass", "current", "dinghy",
		"dolphin", "estuary", "ferry", "gull", "harbor", "heron", "island", "jetty", "kelp", "lagoon",
		"lighthouse", "mariner", "narwhal", "oar", "otter", "pelican", "puffin", "reef", "sail", "shoal",
		"tide", "walrus", "wave"}
)

// generateName returns a "adjective_noun" name for which taken is false, adding a number when the
// plain combinations are all taken.
func generateName(taken func(string) bool) string {
	for i := 0; ; i++ {
		n := nameLeft[mrand.IntN(len(nameLeft))] + "_" + nameRight[mrand.IntN(len(nameRight))]
		if i >= 10 {
			n = fmt.Sprintf("%s%d", n, mrand.IntN(1000))
		}
		if !taken(n) {
			return n
		}
	}
}

// macFor derives a stable, locally administered unicast MAC address from a container ID.
func macFor(id string) string {
	b, err := hex.DecodeString(id[:10])
	if err != nil || len(b) < 5 {
		b = []byte{0, 0, 0, 0, 0}
	}
	return fmt.Sprintf("02:%02x:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3], b[4])
}
