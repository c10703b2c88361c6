// xterm.js colours following the system appearance.
import type { ITheme } from '@xterm/xterm';

export function termTheme(): ITheme {
  const dark = typeof matchMedia === 'function' && matchMedia('(prefers-color-scheme: dark)').matches;
  return dark
    ? { background: '#161618', foreground: '#e6e6e6', cursor: '#e6e6e6', selectionBackground: '#3a4a6a' }
    : { background: '#fbfbfc', foreground: '#1d1d1f', cursor: '#1d1d1f', selectionBackground: '#cfe0ff',
        black: '#1d1d1f', white: '#8e8e93', brightWhite: '#3a3a3c', yellow: '#9c7a00' };
}
