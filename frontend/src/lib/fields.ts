// fieldOf maps a server error to the run dialog field it is about. The bridge may name the field
// (error.field); otherwise the message says what was wrong ("invalid port mapping …").
import type { ApiError } from './transport';

const RULES: [RegExp, string][] = [
  [/\b(publish|port)s?\b/i, 'ports'],
  [/\b(volume|mount|bind|folder)s?\b/i, 'volumes'],
  [/\b(env|environment)\b/i, 'env'],
  [/\bcpus?\b/i, 'cpus'],
  [/\bmemory\b/i, 'memory'],
  [/\brestart\b/i, 'restart'],
  [/\b(command|cmd|entrypoint|executable)\b/i, 'cmd'],
  [/\bname\b/i, 'name'],
  [/\b(image|pull|pulling|manifest|reference|registry|repository|tag)\b/i, 'image'],
];

const ALIASES: Record<string, string> = {
  Image: 'image', Name: 'name', Cmd: 'cmd', Entrypoint: 'cmd', Env: 'env', EnvFiles: 'env',
  Ports: 'ports', Volumes: 'volumes', CPUs: 'cpus', Memory: 'memory', Restart: 'restart',
};

export function fieldOf(err: ApiError): string {
  if (err.field) return ALIASES[err.field] ?? err.field.toLowerCase();
  if (err.code === 'unavailable' || err.code === 'internal') return 'general';
  for (const [re, f] of RULES) if (re.test(err.message)) return f;
  return 'general';
}
