//go:build darwin

package main

/*
static int answer(void) { return 42; }
*/
import "C"

func answer() int { return double(int(C.answer())) }

// double is plain Go in a file that imports "C": its body is checked too.
func double(n int) int { return n * 2 }
