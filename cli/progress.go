package cli

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/skiff-containers/skiff/app"
	"github.com/skiff-containers/skiff/app/client"
	"github.com/skiff-containers/skiff/backend/images"
)

// progressView renders "progress:<id>" events as one status line on stderr (a terminal).
type progressView struct {
	sub    *client.Stream[app.Progress]
	cancel context.CancelFunc
	wg     sync.WaitGroup
	drawn  bool
	stop   func()
}

func (c *cliCtx) showProgress(ctx context.Context, cl *client.Client, id string) *progressView {
	ctx, cancel := context.WithCancel(ctx)
	p := &progressView{sub: cl.Progress(id), cancel: cancel}
	layers := map[string]app.Progress{}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			pr, ok, err := p.sub.Next(ctx)
			if err != nil || !ok {
				return
			}
			layers[pr.Phase+"/"+pr.Layer] = pr
			fmt.Fprintf(c.errw, "\r\x1b[K%s", summarize(layers))
			p.drawn = true
		}
	}()
	p.stop = func() {
		p.cancel()
		p.wg.Wait()
		p.sub.Close(context.Background())
		if p.drawn {
			fmt.Fprint(c.errw, "\r\x1b[K")
		}
	}
	return p
}

// summarize is one line: per phase, layers finished and bytes.
func summarize(layers map[string]app.Progress) string {
	type agg struct {
		n, finished int
		done, total int64
		status      string
	}
	phases := map[string]*agg{}
	for _, pr := range layers {
		a := phases[pr.Phase]
		if a == nil {
			a = &agg{}
			phases[pr.Phase] = a
		}
		a.n++
		a.done += pr.Done
		a.total += pr.Total
		a.status = pr.Status
		if pr.Status == "done" || pr.Status == "exists" || pr.Status == images.StatusDiskReady {
			a.finished++
		}
	}
	names := make([]string, 0, len(phases))
	for n := range phases {
		names = append(names, n)
	}
	sort.Strings(names)
	var parts []string
	for _, n := range names {
		a := phases[n]
		label := map[string]string{"pull": "Pulling", "disk": "Building disk", "kernel": "Fetching kernel", "boot": "Booting"}[n]
		if label == "" {
			label = n
		}
		s := fmt.Sprintf("%s: %d/%d", label, a.finished, a.n)
		if a.total > 0 {
			s += fmt.Sprintf(" (%s / %s)", humanSize(a.done), humanSize(a.total))
		} else if a.status != "" {
			s += " " + a.status
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "  ")
}

func humanSize(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGTPE"[exp])
}

// status shows msg with a spinner on a terminal (stderr) until the returned func is called; it
// prints nothing when stderr is not a terminal.
func (c *cliCtx) status(msg string) (done func()) {
	if !isTerminal(c.errw) {
		return func() {}
	}
	stop := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		frames := `|/-\`
		start := time.Now()
		t := time.NewTicker(120 * time.Millisecond)
		defer t.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				fmt.Fprint(c.errw, "\r\x1b[K")
				return
			case <-t.C:
				fmt.Fprintf(c.errw, "\r\x1b[K%c %s (%.1f s)", frames[i%len(frames)], msg, time.Since(start).Seconds())
			}
		}
	}()
	return func() { close(stop); <-finished }
}
