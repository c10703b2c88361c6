// Search and sort for the list views (Containers, Images), and the `/` key that focuses a search box.

/** matches: every word of the query appears in one of the fields (case-insensitive). */
export function matches(query: string, fields: (string | undefined | null)[]): boolean {
  const words = query.toLowerCase().split(/\s+/).filter(Boolean);
  if (!words.length) return true;
  const hay = fields.filter(Boolean).join('\n').toLowerCase();
  return words.every((w) => hay.includes(w));
}

export interface SortState<K extends string> { key: K; dir: 1 | -1 }

/** sorted returns a sorted copy; key gives each item's value (strings compare naturally, numbers by value). */
export function sorted<T>(items: T[], key: (x: T) => string | number, dir: 1 | -1): T[] {
  const coll = new Intl.Collator(undefined, { numeric: true, sensitivity: 'base' });
  return items.slice().sort((a, b) => {
    const x = key(a);
    const y = key(b);
    const c = typeof x === 'number' && typeof y === 'number' ? x - y : coll.compare(String(x), String(y));
    return c * dir;
  });
}

/** toggleSort: clicking the sorted column flips it, another column sorts by it (first: def). */
export function toggleSort<K extends string>(s: SortState<K>, key: K, def: 1 | -1 = 1): SortState<K> {
  return s.key === key ? { key, dir: (s.dir === 1 ? -1 : 1) } : { key, dir: def };
}

/** typing: the key event comes from a place that takes text, where `/` is a character. */
export function typing(e: KeyboardEvent): boolean {
  const t = e.target as HTMLElement | null;
  if (!t || !t.tagName) return false;
  return t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName) || !!t.closest?.('.xterm, [role="dialog"]');
}

/** slashFocus (a Svelte action) focuses the element when `/` is pressed outside a text field. */
export function slashFocus(el: HTMLInputElement) {
  const onKey = (e: KeyboardEvent) => {
    if (e.key !== '/' || e.ctrlKey || e.metaKey || e.altKey || typing(e)) return;
    e.preventDefault();
    el.focus();
    el.select();
  };
  window.addEventListener('keydown', onKey);
  return { destroy: () => window.removeEventListener('keydown', onKey) };
}

/** rowKeys: Enter on a focused row opens it; arrow keys move between rows. */
export function rowKeys(e: KeyboardEvent, open: () => void) {
  const row = e.currentTarget as HTMLElement;
  if (e.target !== row) return; // a button or checkbox inside the row handles its own keys
  if (e.key === 'Enter') { e.preventDefault(); open(); }
  else if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
    const next = (e.key === 'ArrowDown' ? row.nextElementSibling : row.previousElementSibling) as HTMLElement | null;
    if (next) { e.preventDefault(); next.focus(); }
  }
}
