import { describe, expect, it } from 'vitest';
import { newContainerDefaults, parseMemoryMiB, settingsForm } from '../../src/lib/settings';
import type { AppSettings } from '../../src/lib/types';

describe('settings form', () => {
  it('reads memory sizes as MiB', () => {
    expect(['', '512m', '512', '2g', '1.5g', '1GiB', '64MB'].map(parseMemoryMiB)).toEqual([0, 512, 512, 2048, 1536, 1024, 64]);
    expect(parseMemoryMiB('lots')).toBeNull();
    expect(parseMemoryMiB('5t')).toBeNull();
  });

  it('turns the fields into an update, or names the wrong field', () => {
    expect(settingsForm({ cpus: '2', memory: '1g', startAtLogin: true }, 8))
      .toEqual({ update: { DefaultCPUs: 2, DefaultMemoryMiB: 1024, StartAtLogin: true }, field: '', message: '' });
    expect(settingsForm({ cpus: '', memory: '', startAtLogin: false }, 8).update).toEqual({ DefaultCPUs: 0, DefaultMemoryMiB: 0, StartAtLogin: false });
    expect(settingsForm({ cpus: '16', memory: '', startAtLogin: false }, 8).field).toBe('cpus');
    expect(settingsForm({ cpus: 'two', memory: '', startAtLogin: false }, 0).field).toBe('cpus');
    expect(settingsForm({ cpus: '1', memory: '10m', startAtLogin: false }, 0).field).toBe('memory');
    expect(settingsForm({ cpus: '1', memory: 'big', startAtLogin: false }, 0).message).toContain('512m or 2g');
  });

  it('says what a run without CPUs or memory gets', () => {
    const s = { DefaultCPUs: 0, DefaultMemoryMiB: 0, EngineCPUs: 4, EngineMemoryMiB: 512 } as AppSettings;
    expect(newContainerDefaults(s)).toEqual({ cpus: '4', memory: '512m' });
    expect(newContainerDefaults({ ...s, DefaultCPUs: 1.5, DefaultMemoryMiB: 2048 })).toEqual({ cpus: '1.5', memory: '2g' });
    expect(newContainerDefaults(null)).toEqual({ cpus: 'all (≤ 4)', memory: '512m' });
  });
});
