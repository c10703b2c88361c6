// Drops on a container: what can be mounted, where, and why a drop is refused (before anything changes).
import type { Container } from './types';

/** baseName: the last element of a host path ("data" for "/", so a target is never empty). */
export function baseName(p: string): string {
  return p.replace(/\/+$/, '').split('/').pop() || 'data';
}

/** mountTarget: where a dropped folder or file goes in the container by default. */
export function mountTarget(hostPathOrName: string): string {
  return `/mnt/${baseName(hostPathOrName || 'data')}`;
}

/**
 * dropRefusal says why a drop of `count` items on container c cannot be honoured now ('' when it can):
 * one folder or file at a time, a container paused or gone, or no engine. The dialog is
 * not opened then, so nothing changes.
 */
export function dropRefusal(c: Container | null | undefined, count: number, engineDown: boolean): string {
  if (!c) return 'The container is gone.';
  if (engineDown) return 'The engine is not running: start it, then drop again.';
  if (count === 0) return 'Nothing was dropped that has a path on this computer.';
  if (count > 1) return `Drop one folder or file at a time (${count} were dropped on ${c.Name}).`;
  if (c.State === 'paused') return `${c.Name} is paused: unpause it to change its folders.`;
  return '';
}

/** checkMountForm says what is wrong with the dialog's fields ('' when nothing). */
export function checkMountForm(host: string, target: string): { field: 'host' | 'target' | ''; message: string } {
  if (!host.startsWith('/')) return { field: 'host', message: 'Enter the absolute path of the folder or file on this computer.' };
  if (!target.startsWith('/')) return { field: 'target', message: 'The path in the container must be absolute.' };
  if (target.replace(/\/+$/, '') === '') return { field: 'target', message: 'The path in the container cannot be / itself.' };
  return { field: '', message: '' };
}
