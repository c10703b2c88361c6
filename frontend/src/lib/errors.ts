// Engine errors in plain words: what went wrong and what to do, the field of the run dialog it is
// about, and the raw chain (shown behind "Details"). And what long actions wait for.
import type { ApiError } from './transport';
import { fieldOf } from './fields';

export interface Explained {
  /** the run dialog field the error is about ('general' when none) */
  field: string;
  /** plain words for the user */
  text: string;
  /** the engine's own message, when it says more than text */
  detail: string;
}

const quoted = (msg: string) => /"([^"]+)"/.exec(msg)?.[1] ?? '';

// Ordered: the first rule that matches explains the error. A rule with a code matches that code, or
// its pattern in a message about running a command.
const RULES: { re: RegExp; code?: string; field: string; text: (m: string) => string }[] = [
  { re: /executable file not found|command not found|not found in \$PATH/i, code: 'command_not_found', field: 'cmd',
    text: () => 'The command was not found in the image. Check its spelling, or give its full path.' },
  { re: /permission denied|exec format error/i, code: 'cannot_run', field: 'cmd',
    text: () => 'The command exists but cannot be run: it is not an executable for this image.' },
  { re: /no such host|server misbehaving|lookup \S+ on |temporary failure in name resolution/i, field: 'image',
    text: (m) => `The registry${host(m) ? ` ${host(m)}` : ''} could not be found: its name did not resolve. Check the network connection and the image's registry name.` },
  { re: /connection refused|network is unreachable|i\/o timeout|TLS handshake timeout|no route to host|connection reset/i, field: 'image',
    text: () => 'The registry could not be reached. Check the network connection, then try again.' },
  { re: /manifest unknown|name unknown|repository (does not exist|not found)|no such image|MANIFEST_UNKNOWN|NAME_UNKNOWN/i, field: 'image',
    text: (m) => `The image${quoted(m) ? ` “${quoted(m)}”` : ''} was not found. Check its name and tag (e.g. alpine:latest).` },
  { re: /unauthorized|authentication required|requested access to the resource is denied/i, field: 'image',
    text: () => 'The registry refused access to this image: it may be private (log in first) or not exist.' },
  { re: /container name .* is already in use|\bname\b.* already in use/i, field: 'name',
    text: (m) => `Another container is already called${quoted(m) ? ` “${quoted(m)}”` : ' that'}. Choose another name, or remove that container first.` },
  { re: /host (port|address) \S+ is already in use|address already in use/i, field: 'ports',
    text: (m) => {
      const p = /host (?:port|address) \S*:(\d+) is already/.exec(m)?.[1];
      return `Host port${p ? ` ${p}` : ''} is already taken by another program or container. Choose another host port.`;
    } },
];

const host = (m: string) => /lookup (\S+?)(:\d+)? on /.exec(m)?.[1] ?? /dial tcp: lookup (\S+)/.exec(m)?.[1] ?? '';

/** explain turns an engine error into plain words next to the field it concerns. */
export function explain(err: ApiError): Explained {
  const raw = err.message;
  for (const r of RULES) {
    const hit = r.code ? err.code === r.code || (r.re.test(raw) && /\bexec|\bcommand|\$PATH/i.test(raw)) : r.re.test(raw);
    if (hit) return { field: r.field, text: r.text(raw), detail: raw };
  }
  // Validation errors already say what was wrong with the value given.
  return { field: fieldOf(err), text: raw, detail: '' };
}

/** waits: what a long action waits for, shown while it runs. */
export const waits = {
  stop: 'Up to 10 s for it to exit, then it is killed.',
  restart: 'Up to 10 s for it to exit, then it starts again.',
  start: 'Starting its VM: a few seconds.',
  kill: 'It is stopped first.',
};
