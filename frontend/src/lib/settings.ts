// The Settings view's form: text fields to a SettingsUpdate (checked by field), and the defaults a
// new container gets, as the Run dialog shows them.
import type { AppSettings, SettingsUpdate } from './types';

/** parseMemoryMiB reads "512m", "2g", "1.5g", "768" (MiB) or "" (0: the engine's default) as MiB. */
export function parseMemoryMiB(s: string): number | null {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([mg]i?b?)?\s*$/i.exec(s);
  if (!s.trim()) return 0;
  if (!m) return null;
  const v = parseFloat(m[1]) * (m[2] && m[2][0].toLowerCase() === 'g' ? 1024 : 1);
  return Number.isFinite(v) ? Math.floor(v) : null;
}

/** settingsForm turns the form's fields into an update, or names the field that is wrong. */
export function settingsForm(f: { cpus: string; memory: string; startAtLogin: boolean }, hostCPUs: number):
  { update: SettingsUpdate | null; field: 'cpus' | 'memory' | ''; message: string } {
  const cpus = f.cpus.trim() === '' ? 0 : Number(f.cpus);
  if (!Number.isFinite(cpus) || cpus < 0 || (cpus !== 0 && (cpus < 0.01 || (hostCPUs > 0 && cpus > hostCPUs)))) {
    return { update: null, field: 'cpus', message: `CPUs: a number from 0.01 to ${hostCPUs || 'the host\'s CPU count'}, or empty for the engine's default.` };
  }
  const mem = parseMemoryMiB(f.memory);
  if (mem === null || (mem !== 0 && mem < 64)) {
    return { update: null, field: 'memory', message: 'Memory: a size such as 512m or 2g (at least 64m), or empty for the engine\'s default.' };
  }
  return { update: { DefaultCPUs: cpus, DefaultMemoryMiB: mem, StartAtLogin: f.startAtLogin }, field: '', message: '' };
}

/** newContainerDefaults says what a run that sets no CPUs or memory gets: "2 CPUs · 512 MiB". */
export function newContainerDefaults(s: AppSettings | null): { cpus: string; memory: string } {
  if (!s) return { cpus: 'all (≤ 4)', memory: '512m' };
  const cpus = s.DefaultCPUs || s.EngineCPUs;
  const mib = s.DefaultMemoryMiB || s.EngineMemoryMiB;
  return { cpus: String(cpus), memory: mib % 1024 === 0 ? `${mib / 1024}g` : `${mib}m` };
}
