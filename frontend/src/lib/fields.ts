// fieldOf maps a server error to the run dialog field it is about. The bridge may name the field
// (error.field); otherwise the message says what was wrong ("invalid port mapping …").
import type { ApiError } from './transport';

// Ordered: the first rule whose pattern matches names the field. Messages quote the user's value,
// so the rules look at the words app.ParseRunRequest puts around it ("invalid port mapping %q").
const RULES: [RegExp, string][] = [
  [/^invalid --(cpus)\b/i, 'cpus'],
  [/^invalid --(memory)\b/i, 'memory'],
  [/^invalid --(restart)\b|conflicting options: --restart/i, 'restart'],
  [/^invalid port mapping|^invalid --publish|\bport \d+ is (already )?in use|\baddress already in use/i, 'ports'],
  [/^invalid volume|^invalid mount|already has a folder mounted/i, 'volumes'],
  [/^invalid environment variable|^reading env file|^env file/i, 'env'],
  [/^invalid container name|^name .* (already )?in use|^the name /i, 'name'],
  [/^invalid image reference|^an image is required|^pulling |manifest unknown|no such image|^image /i, 'image'],
  [/^a command is required|entrypoint/i, 'cmd'],
];

const ALIASES: Record<string, string> = {
  Image: 'image', Name: 'name', Cmd: 'cmd', Entrypoint: 'cmd', Env: 'env', EnvFiles: 'env',
  Ports: 'ports', Volumes: 'volumes', CPUs: 'cpus', Memory: 'memory', Restart: 'restart',
};

export function fieldOf(err: ApiError): string {
  if (err.field) return ALIASES[err.field] ?? err.field.toLowerCase();
  for (const [re, f] of RULES) if (re.test(err.message)) return f;
  if (err.code === 'command_not_found' || err.code === 'cannot_run') return 'cmd';
  return 'general';
}
