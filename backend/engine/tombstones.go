package engine

// maxTombstones is how many removed containers keep their exit code for a late Wait.
const maxTombstones = 1000

// tombstones holds the exit codes of the last maxTombstones removed containers, by ID and by name,
// so that a Wait that arrives after an auto-removal (run --rm) still gets the code. The oldest go
// first, one at a time (a name taken again since answers for its newest container).
type tombstones struct {
	codes map[string]tombstone // by ID and by name
	order []tombstoneKey       // oldest first
	seq   uint64
}

type tombstone struct {
	code int
	seq  uint64 // which removal wrote it
}

type tombstoneKey struct {
	id, name string
	seq      uint64
}

// add records the exit code of the container id, named name, that was just removed.
func (t *tombstones) add(id, name string, code int) {
	if t.codes == nil {
		t.codes = map[string]tombstone{}
	}
	t.seq++
	t.codes[id] = tombstone{code: code, seq: t.seq}
	if name != "" {
		t.codes[name] = tombstone{code: code, seq: t.seq}
	}
	t.order = append(t.order, tombstoneKey{id: id, name: name, seq: t.seq})
	for len(t.order) > maxTombstones {
		old := t.order[0]
		t.order[0] = tombstoneKey{}
		t.order = t.order[1:]
		for _, k := range []string{old.id, old.name} {
			if tb, ok := t.codes[k]; ok && tb.seq == old.seq {
				delete(t.codes, k)
			}
		}
	}
}

// get returns the exit code recorded for ref (an ID or a name).
func (t *tombstones) get(ref string) (int, bool) {
	tb, ok := t.codes[ref]
	return tb.code, ok
}
