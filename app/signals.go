package app

import (
	"strconv"
	"strings"
)

// signals are the Linux signal numbers by name (the guest is always Linux, whatever the host).
var signals = map[string]int{
	"HUP": 1, "INT": 2, "QUIT": 3, "ILL": 4, "TRAP": 5, "ABRT": 6, "IOT": 6, "BUS": 7, "FPE": 8, "KILL": 9,
	"USR1": 10, "SEGV": 11, "USR2": 12, "PIPE": 13, "ALRM": 14, "TERM": 15, "STKFLT": 16, "CHLD": 17,
	"CONT": 18, "STOP": 19, "TSTP": 20, "TTIN": 21, "TTOU": 22, "URG": 23, "XCPU": 24, "XFSZ": 25,
	"VTALRM": 26, "PROF": 27, "WINCH": 28, "IO": 29, "POLL": 29, "PWR": 30, "SYS": 31,
}

// ParseSignal normalises a signal given as a name ("TERM", "SIGTERM", "sigterm") or a number
// ("15") to its canonical name without the SIG prefix; "" is "KILL".
func ParseSignal(s string) (string, error) {
	if s == "" {
		return "KILL", nil
	}
	if n, err := strconv.Atoi(s); err == nil {
		for name, num := range signals {
			if num == n && name != "IOT" && name != "POLL" {
				return name, nil
			}
		}
		if n >= 34 && n <= 64 {
			return s, nil // real-time signals stay numeric
		}
		return "", invalid("invalid signal %q", s)
	}
	name := strings.TrimPrefix(strings.ToUpper(s), "SIG")
	if _, ok := signals[name]; !ok {
		return "", invalid("invalid signal %q", s)
	}
	return name, nil
}

// SignalNumber returns the Linux number of a signal name from ParseSignal.
func SignalNumber(name string) (int, bool) {
	if n, ok := signals[name]; ok {
		return n, true
	}
	n, err := strconv.Atoi(name)
	return n, err == nil
}
