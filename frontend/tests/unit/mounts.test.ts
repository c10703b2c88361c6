import { describe, expect, it } from 'vitest';
import { checkMountForm, dropRefusal, mountTarget } from '../../src/lib/mounts';
import type { Container } from '../../src/lib/types';

const ctr = (State: string): Container => ({ ID: 'a'.repeat(64), Name: 'web', State } as Container);

describe('drops on a container', () => {
  it('mounts one folder or file under /mnt by its name', () => {
    expect(mountTarget('/Users/me/project/')).toBe('/mnt/project');
    expect(mountTarget('/Users/me/app.conf')).toBe('/mnt/app.conf');
    expect(mountTarget('')).toBe('/mnt/data');
    expect(mountTarget('/')).toBe('/mnt/data');
  });

  it('says why a drop cannot be honoured, before any dialog', () => {
    expect(dropRefusal(ctr('running'), 1, false)).toBe('');
    expect(dropRefusal(ctr('exited'), 1, false)).toBe('');
    expect(dropRefusal(ctr('running'), 3, false)).toBe('Drop one folder or file at a time (3 were dropped on web).');
    expect(dropRefusal(ctr('paused'), 1, false)).toBe('web is paused: unpause it to change its folders.');
    expect(dropRefusal(ctr('running'), 1, true)).toContain('engine is not running');
    expect(dropRefusal(ctr('running'), 0, false)).toContain('Nothing was dropped');
    expect(dropRefusal(undefined, 1, false)).toBe('The container is gone.');
  });

  it('names the field that is wrong', () => {
    expect(checkMountForm('/a/b.txt', '/etc/b.txt')).toEqual({ field: '', message: '' });
    expect(checkMountForm('a/b', '/x').field).toBe('host');
    expect(checkMountForm('/a', 'x').field).toBe('target');
    expect(checkMountForm('/a', '/').field).toBe('target');
  });
});
