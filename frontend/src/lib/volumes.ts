// Volumes in the UI: labels typed as text, and which containers use a volume.
import type { Container, Volume } from './types';

/** parseLabels reads `key=value` labels separated by commas or new lines; a malformed one is named in error. */
export function parseLabels(text: string): { labels: string[]; error: string } {
  const labels: string[] = [];
  for (const raw of text.split(/[,\n]/)) {
    const l = raw.trim();
    if (!l) continue;
    const eq = l.indexOf('=');
    const key = eq < 0 ? l : l.slice(0, eq).trim();
    if (eq <= 0 || !key || /\s/.test(key)) return { labels: [], error: `label “${l}”: want key=value, with no spaces in the key` };
    labels.push(`${key}=${l.slice(eq + 1).trim()}`);
  }
  return { labels, error: '' };
}

/** volumeUsers: the containers a volume's UsedBy names (container IDs), with the IDs no container listed matches kept as short IDs. */
export function volumeUsers(v: Volume, containers: Container[]): { id: string; name: string }[] {
  return (v.UsedBy ?? []).map((id) => {
    const c = containers.find((x) => x.ID === id || x.ID.startsWith(id));
    return { id: c?.ID ?? id, name: c?.Name ?? id.slice(0, 12) };
  });
}

/** volumeLabel: an anonymous volume's name is a 64-digit hex string; shown short. */
export function volumeLabel(v: Volume): string {
  return v.Anonymous && /^[0-9a-f]{24,}$/.test(v.Name) ? v.Name.slice(0, 12) : v.Name;
}
